// ResourcePlugin: the kubelet DevicePlugin gRPC service for one resource ("<prefix>/<pool>"),
// served on its own unix socket in the kubelet dir and registered with kubelet.sock.
//
// The plugin holds the device list kubelet sees; ListAndWatch streams send it at once and again
// whenever set_devices() changes it. Allocation decisions are the owner's (AllocationHandler),
// so this unit is only the gRPC shape. Thread-safety: every public method may be called from any
// thread; gRPC handler threads read the device list under mu_.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "base/result.h"
#include "k8s/proto/deviceplugin.grpc.pb.h"

namespace sriovd::k8s {

class AllocationHandler {
 public:
  virtual ~AllocationHandler() = default;
  virtual grpc::Status allocate(const std::string& pool, const v1beta1::AllocateRequest& req,
                                v1beta1::AllocateResponse* resp) = 0;
  virtual std::vector<std::string> preferred(const std::string& pool, const std::vector<std::string>& available,
                                             const std::vector<std::string>& must_include, int size) = 0;
};

inline constexpr const char* kHealthy = "Healthy";
inline constexpr const char* kUnhealthy = "Unhealthy";

class ResourcePlugin final : public v1beta1::DevicePlugin::Service {
 public:
  ResourcePlugin(std::string pool, std::string resource, std::filesystem::path kubelet_dir, AllocationHandler& handler);
  ~ResourcePlugin() override;

  const std::string& pool() const { return pool_; }
  const std::string& resource() const { return resource_; }
  std::string endpoint() const;  // the socket's file name, as registered
  std::filesystem::path socket_path() const { return kubelet_dir_ / endpoint(); }

  // Starts (or restarts) the gRPC server on a fresh socket file.
  Result<void> serve();
  bool serving() const;
  // Whether our socket file is still there (kubelet deletes the dir's contents when it starts).
  bool socket_present() const;
  // Register with kubelet at `kubelet_socket`, waiting up to `deadline` for it to accept.
  Result<void> register_with(const std::filesystem::path& kubelet_socket, std::chrono::milliseconds deadline);
  // Stops the server, ends open ListAndWatch streams, removes the socket file.
  void shutdown();

  // Replaces the advertised devices; open ListAndWatch streams send the new list if it differs.
  // Returns whether it differed.
  bool set_devices(std::vector<v1beta1::Device> devices);
  std::vector<v1beta1::Device> devices() const;

  // gRPC handlers.
  grpc::Status GetDevicePluginOptions(grpc::ServerContext*, const v1beta1::Empty*,
                                      v1beta1::DevicePluginOptions* out) override;
  grpc::Status ListAndWatch(grpc::ServerContext* ctx, const v1beta1::Empty*,
                            grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) override;
  grpc::Status GetPreferredAllocation(grpc::ServerContext*, const v1beta1::PreferredAllocationRequest* req,
                                      v1beta1::PreferredAllocationResponse* out) override;
  grpc::Status Allocate(grpc::ServerContext*, const v1beta1::AllocateRequest* req,
                        v1beta1::AllocateResponse* out) override;
  grpc::Status PreStartContainer(grpc::ServerContext*, const v1beta1::PreStartContainerRequest*,
                                 v1beta1::PreStartContainerResponse*) override;

 private:
  // Stops the server, if any: ends its streams, then drains it with mu_ released (its handlers
  // take mu_), and takes mu_ again before returning.
  void stop_server() SRIOVD_REQUIRES(mu_);

  const std::string pool_;
  const std::string resource_;
  const std::filesystem::path kubelet_dir_;
  AllocationHandler& handler_;

  mutable Mutex mu_;
  CondVar cv_;  // generation_ or server_epoch_ changed
  v1beta1::ListAndWatchResponse current_ SRIOVD_GUARDED_BY(mu_);
  std::string current_wire_ SRIOVD_GUARDED_BY(mu_);  // current_ serialised, to compare
  uint64_t generation_ SRIOVD_GUARDED_BY(mu_) = 1;
  uint64_t server_epoch_ SRIOVD_GUARDED_BY(mu_) = 0;  // bumps on each stop
  std::unique_ptr<grpc::Server> server_ SRIOVD_GUARDED_BY(mu_);
};

}  // namespace sriovd::k8s
