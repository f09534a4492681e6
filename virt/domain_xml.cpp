#include "virt/domain_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

#include "base/shared_library.h"

namespace sriovd::virt {

namespace {

constexpr size_t kMaxDocument = 16u << 20;

// libxml2 (and the ICU it links) is loaded on the first parse: only the libvirt paths read
// domain XML, and a daemon that never attaches a device should not map it. These are the
// functions used; xmlFree is libxml2's variable holding its deallocator.
// One X per function, packed as written: clang-format reflows this list differently every run.
// clang-format off
#define SRIOVD_LIBXML2_FUNCTIONS(X)                                                                       \
  X(xmlCtxtGetLastError) X(xmlCtxtReadMemory) X(xmlDocGetRootElement) X(xmlFree) X(xmlFreeDoc)           \
  X(xmlFreeParserCtxt) X(xmlGetNoNsProp) X(xmlInitParser) X(xmlNewParserCtxt) X(xmlStrEqual)
// clang-format on

struct XmlApi {
  SRIOVD_DECLARE_FUNCTIONS(SRIOVD_LIBXML2_FUNCTIONS)
};

// Set once, inside load_libxml2()'s first call; everything below that touches a node runs
// after it.
const XmlApi* libxml = nullptr;

Result<void> load_libxml2() {
  auto loaded = SharedLibrary::load_once<XmlApi>("libxml2.so.2", "libxml2", [](const SharedLibrary& lib, XmlApi& t) {
    auto r = SRIOVD_RESOLVE_FUNCTIONS(lib, t, SRIOVD_LIBXML2_FUNCTIONS);
    if (!r) return r;
    t.xmlInitParser();
    libxml = &t;
    return r;
  });
  if (!loaded) return std::move(loaded).error();
  return ok();
}

struct CtxtFree {
  void operator()(xmlParserCtxt* c) const { libxml->xmlFreeParserCtxt(c); }
};
struct DocFree {
  void operator()(xmlDoc* d) const { libxml->xmlFreeDoc(d); }
};

bool named(const xmlNode* n, const char* name) {
  return n->type == XML_ELEMENT_NODE && libxml->xmlStrEqual(n->name, reinterpret_cast<const xmlChar*>(name));
}

std::optional<std::string> attr(const xmlNode* n, const char* name) {
  xmlChar* v = libxml->xmlGetNoNsProp(n, reinterpret_cast<const xmlChar*>(name));
  if (!v) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(v));
  (*libxml->xmlFree)(v);
  return out;
}

const xmlNode* child(const xmlNode* n, const char* name) {
  for (const xmlNode* c = n->children; c; c = c->next) {
    if (named(c, name)) return c;
  }
  return nullptr;
}

// A number as libvirt reads PCI address attributes (strtoul base 0: "0x17", "23", "027"),
// bounded by `max`. Absent means 0, as in libvirt.
Result<uint32_t> address_number(const xmlNode* address, const char* name, unsigned long max) {
  auto text = attr(address, name);
  if (!text) return uint32_t{0};
  const std::string& s = *text;
  if (s.empty() || s[0] == '-' || s[0] == '+' || s[0] == ' ') {
    return Error::make(ErrorCode::bad_request,
                       std::string("PCI address attribute ") + name + "='" + s + "' is not a number");
  }
  errno = 0;
  char* end = nullptr;
  unsigned long v = std::strtoul(s.c_str(), &end, 0);
  if (errno != 0 || end == s.c_str() || *end != '\0') {
    return Error::make(ErrorCode::bad_request,
                       std::string("PCI address attribute ") + name + "='" + s + "' is not a number");
  }
  if (v > max) {
    return Error::make(ErrorCode::bad_request,
                       std::string("PCI address attribute ") + name + "='" + s + "' is out of range");
  }
  return static_cast<uint32_t>(v);
}

Result<std::optional<PciAddress>> source_address(const xmlNode* device) {
  const xmlNode* source = child(device, "source");
  if (!source) return std::optional<PciAddress>{};
  const xmlNode* address = child(source, "address");
  if (!address) return std::optional<PciAddress>{};
  auto type = attr(address, "type");
  if (type && *type != "pci") return std::optional<PciAddress>{};
  auto domain = address_number(address, "domain", 0xffffffffUL);
  if (!domain) return std::move(domain).error();
  auto bus = address_number(address, "bus", 0xff);
  if (!bus) return std::move(bus).error();
  auto slot = address_number(address, "slot", 0x1f);
  if (!slot) return std::move(slot).error();
  auto function = address_number(address, "function", 7);
  if (!function) return std::move(function).error();
  return std::optional<PciAddress>(
      PciAddress{*domain, static_cast<uint8_t>(*bus), static_cast<uint8_t>(*slot), static_cast<uint8_t>(*function)});
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

Result<DomainDevice> decode_device(const xmlNode* n) {
  DomainDevice d;
  d.element = reinterpret_cast<const char*>(n->name);
  if (const xmlNode* a = child(n, "alias")) d.alias = attr(a, "name");
  auto type = attr(n, "type");
  if (named(n, "hostdev")) {
    if (attr(n, "mode").value_or("subsystem") != "subsystem" || type != "pci") return d;
    d.kind = DomainDevice::Kind::HostdevPci;
    auto address = source_address(n);
    if (!address) return std::move(address).error();
    d.address = *address;
  } else if (named(n, "interface")) {
    if (const xmlNode* m = child(n, "mac")) {
      if (auto mac = attr(m, "address")) d.mac = lower(*mac);
    }
    if (type == "hostdev") {
      d.kind = DomainDevice::Kind::HostdevInterface;
      auto address = source_address(n);
      if (!address) return std::move(address).error();
      d.address = *address;
    } else if (type == "direct") {
      d.kind = DomainDevice::Kind::Direct;
      if (const xmlNode* s = child(n, "source")) d.netdev = attr(s, "dev");
    }
  }
  return d;
}

}  // namespace

Result<std::vector<DomainDevice>> parse_devices(std::string_view xml) {
  if (xml.size() > kMaxDocument) {
    return Error::make(ErrorCode::bad_request,
                       "XML document of " + std::to_string(xml.size()) + " bytes is over 16 MiB");
  }
  if (auto loaded = load_libxml2(); !loaded) return std::move(loaded).error();

  std::unique_ptr<xmlParserCtxt, CtxtFree> ctxt(libxml->xmlNewParserCtxt());
  if (!ctxt) return Error::make(ErrorCode::internal, "libxml2 could not allocate a parser");
  // No network, no entity substitution (XML_PARSE_NOENT is not set), no DTD loading, and no
  // report to stderr: the error is returned instead.
  const int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
  std::unique_ptr<xmlDoc, DocFree> doc(
      libxml->xmlCtxtReadMemory(ctxt.get(), xml.data(), static_cast<int>(xml.size()), "device.xml", nullptr, options));
  if (!doc) {
    std::string why = "not well-formed";
    if (const xmlError* e = libxml->xmlCtxtGetLastError(ctxt.get()); e && e->message) {
      why = e->message;
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      why += " (line " + std::to_string(e->line) + ")";
    }
    return Error::make(ErrorCode::bad_request, "XML " + why);
  }
  const xmlNode* root = libxml->xmlDocGetRootElement(doc.get());
  if (!root) return Error::make(ErrorCode::bad_request, "XML document has no root element");

  std::vector<DomainDevice> out;
  if (named(root, "domain")) {
    const xmlNode* devices = child(root, "devices");
    if (!devices) return out;
    for (const xmlNode* n = devices->children; n; n = n->next) {
      if (n->type != XML_ELEMENT_NODE) continue;
      auto d = decode_device(n);
      if (!d) return std::move(d).error();
      out.push_back(std::move(*d));
    }
  } else {
    auto d = decode_device(root);
    if (!d) return std::move(d).error();
    out.push_back(std::move(*d));
  }
  return out;
}

bool same_source(const DomainDevice& a, const DomainDevice& b) {
  using Kind = DomainDevice::Kind;
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::HostdevPci:
    case Kind::HostdevInterface: return a.address && a.address == b.address;
    case Kind::Direct: return a.netdev && a.netdev == b.netdev;
    case Kind::Other: return false;
  }
  return false;
}

}  // namespace sriovd::virt
