# Installation layout and the Debian package (cpack -G DEB in the build directory).
# Included last, so optional targets defined by any folder (sriovd-k8s) are known here.
include(GNUInstallDirs)

set(SRIOVD_BINDIR /usr/bin)
configure_file(${PROJECT_SOURCE_DIR}/systemd/sriovd.service.in ${CMAKE_BINARY_DIR}/systemd/sriovd.service @ONLY)

install(TARGETS sriovd sriovd-daemon sriovd-cli RUNTIME DESTINATION bin)
if(TARGET sriovd-k8s)
  install(TARGETS sriovd-k8s RUNTIME DESTINATION bin)
  install(FILES ${PROJECT_SOURCE_DIR}/systemd/sriovd-k8s.service DESTINATION /lib/systemd/system)
endif()
install(FILES ${CMAKE_BINARY_DIR}/systemd/sriovd.service DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/sriovd.sysusers DESTINATION lib/sysusers.d RENAME sriovd.conf)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/sriovd.tmpfiles DESTINATION lib/tmpfiles.d RENAME sriovd.conf)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/sriovd.json DESTINATION /etc/sriovd
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${PROJECT_SOURCE_DIR}/schemas/config.schema.json DESTINATION share/doc/sriovd)
install(FILES ${PROJECT_SOURCE_DIR}/cli/sriovd-cli.bash DESTINATION share/bash-completion/completions RENAME sriovd-cli)
if(TARGET sriovd_man)
  install(FILES ${CMAKE_BINARY_DIR}/man/man8/sriovd.8 DESTINATION share/man/man8)
  install(FILES ${CMAKE_BINARY_DIR}/man/man1/sriovd-cli.1 DESTINATION share/man/man1)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sriovd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "sriovd maintainers <sriovd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "SR-IOV and PCI passthrough host agent")
set(CPACK_PACKAGE_DESCRIPTION
    "sriovd reads the host's PCI devices and IOMMU groups, configures SR-IOV virtual functions and\n"
    "driver binding (vfio-pci) with rollback, and serves it all over a REST API (unix socket, or\n"
    "TCP with TLS and bearer tokens) to sriovd-cli, orchestrators and the Kubernetes sidecar.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "pci.ids, systemd")
# libvirt and libxml2 are loaded only when a lease is attached to or detached from a domain.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libvirt0, libxml2")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/systemd/debian/conffiles ${PROJECT_SOURCE_DIR}/systemd/debian/postinst
    ${PROJECT_SOURCE_DIR}/systemd/debian/prerm ${PROJECT_SOURCE_DIR}/systemd/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
