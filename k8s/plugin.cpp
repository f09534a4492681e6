#include "k8s/plugin.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace sriovd::k8s {

ResourcePlugin::ResourcePlugin(std::string pool, std::string resource, std::filesystem::path kubelet_dir,
                               AllocationHandler& handler)
    : pool_(std::move(pool)), resource_(std::move(resource)), kubelet_dir_(std::move(kubelet_dir)), handler_(handler) {
  current_wire_ = current_.SerializeAsString();
}

ResourcePlugin::~ResourcePlugin() { shutdown(); }

std::string ResourcePlugin::endpoint() const {
  std::string out;
  for (char ch : resource_) out += ch == '/' ? '_' : ch;
  return out + ".sock";
}

bool ResourcePlugin::socket_present() const {
  struct stat st;
  return ::lstat(socket_path().c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool ResourcePlugin::serving() const {
  MutexLock lk(mu_);
  return server_ != nullptr;
}

Result<void> ResourcePlugin::serve() {
  MutexLock lk(mu_);
  stop_server();
  auto path = socket_path();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return Error::sys(errno, "removing stale socket " + path.string());
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + path.string(), grpc::InsecureServerCredentials());
  b.RegisterService(this);
  // kubelet makes one call at a time per plugin plus the ListAndWatch stream: a small poller
  // pool keeps the thread count (and so memory) low.
  b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 2);
  server_ = b.BuildAndStart();
  if (!server_) return Error::make(ErrorCode::io, "cannot serve the device plugin on " + path.string());
  return ok();
}

void ResourcePlugin::stop_server() {
  if (!server_) return;
  auto server = std::move(server_);
  ++server_epoch_;  // ends the streams of this server
  cv_.notify_all();
  mu_.unlock();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  mu_.lock();
}

void ResourcePlugin::shutdown() {
  MutexLock lk(mu_);
  bool had = server_ != nullptr;
  stop_server();
  if (had) ::unlink(socket_path().c_str());
}

Result<void> ResourcePlugin::register_with(const std::filesystem::path& kubelet_socket,
                                           std::chrono::milliseconds deadline) {
  // kubelet.sock appears at bind(), a moment before kubelet listens: the first connect may be
  // refused. gRPC's default reconnect backoff (1 s and growing) would then blow the 1 s budget
  // for re-registering; retry every 20-200 ms instead.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  auto channel = grpc::CreateCustomChannel("unix:" + kubelet_socket.string(), grpc::InsecureChannelCredentials(), args);
  auto stub = v1beta1::Registration::NewStub(channel);
  v1beta1::RegisterRequest req;
  req.set_version("v1beta1");
  req.set_endpoint(endpoint());
  req.set_resource_name(resource_);
  req.mutable_options()->set_get_preferred_allocation_available(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  ctx.set_wait_for_ready(true);  // kubelet may have created its socket but not be listening yet
  v1beta1::Empty resp;
  grpc::Status st = stub->Register(&ctx, req, &resp);
  if (!st.ok())
    return Error::make(
        st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? ErrorCode::unavailable : ErrorCode::conflict,
        "registering " + resource_ + " with kubelet at " + kubelet_socket.string() + ": " + st.error_message());
  return ok();
}

bool ResourcePlugin::set_devices(std::vector<v1beta1::Device> devices) {
  v1beta1::ListAndWatchResponse next;
  for (auto& d : devices) *next.add_devices() = std::move(d);
  std::string wire = next.SerializeAsString();
  MutexLock lk(mu_);
  if (wire == current_wire_) return false;
  current_ = std::move(next);
  current_wire_ = std::move(wire);
  ++generation_;
  cv_.notify_all();
  return true;
}

std::vector<v1beta1::Device> ResourcePlugin::devices() const {
  MutexLock lk(mu_);
  return {current_.devices().begin(), current_.devices().end()};
}

grpc::Status ResourcePlugin::GetDevicePluginOptions(grpc::ServerContext*, const v1beta1::Empty*,
                                                    v1beta1::DevicePluginOptions* out) {
  out->set_pre_start_required(false);
  out->set_get_preferred_allocation_available(true);
  return grpc::Status::OK;
}

grpc::Status ResourcePlugin::ListAndWatch(grpc::ServerContext* ctx, const v1beta1::Empty*,
                                          grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) {
  uint64_t sent = 0;
  MutexLock lk(mu_);
  const uint64_t epoch = server_epoch_;
  while (true) {
    // Wakes on a new list or on shutdown; the timeout only bounds how long a stream kubelet
    // has abandoned keeps its thread.
    cv_.wait_for(lk, std::chrono::seconds(1),
                 [&]() SRIOVD_REQUIRES(mu_) { return generation_ != sent || server_epoch_ != epoch; });
    if (server_epoch_ != epoch) return grpc::Status::OK;
    if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
    if (generation_ == sent) continue;
    v1beta1::ListAndWatchResponse copy = current_;
    sent = generation_;
    lk.unlock();
    bool ok = writer->Write(copy);
    lk.lock();
    if (!ok) return grpc::Status::CANCELLED;
  }
}

grpc::Status ResourcePlugin::GetPreferredAllocation(grpc::ServerContext*,
                                                    const v1beta1::PreferredAllocationRequest* req,
                                                    v1beta1::PreferredAllocationResponse* out) {
  for (const auto& c : req->container_requests()) {
    std::vector<std::string> avail(c.available_deviceids().begin(), c.available_deviceids().end());
    std::vector<std::string> must(c.must_include_deviceids().begin(), c.must_include_deviceids().end());
    auto* r = out->add_container_responses();
    for (auto& id : handler_.preferred(pool_, avail, must, c.allocation_size())) r->add_deviceids(std::move(id));
  }
  return grpc::Status::OK;
}

grpc::Status ResourcePlugin::Allocate(grpc::ServerContext*, const v1beta1::AllocateRequest* req,
                                      v1beta1::AllocateResponse* out) {
  return handler_.allocate(pool_, *req, out);
}

grpc::Status ResourcePlugin::PreStartContainer(grpc::ServerContext*, const v1beta1::PreStartContainerRequest*,
                                               v1beta1::PreStartContainerResponse*) {
  return grpc::Status::OK;
}

}  // namespace sriovd::k8s
