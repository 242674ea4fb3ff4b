# Basalt store image. Written and read here; no Docker engine runs in this build environment,
# so this file is checked by reading only (src/security/permissions_test.ts checks that its permissions
# are the ones src/security/permissions.ts works out for this layout).
#
# The image listens on ALL interfaces (0.0.0.0:20160 gRPC, 0.0.0.0:20180 status). Run it on a
# trusted network only, or with TLS: mount a CA, a certificate and a key and pass
# --config with a [security] section (ca-path, cert-path, key-path, cert-allowed-cn); the
# --allow-read below must then also name those files and the config (see README, Security).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librocksdb7.8 nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && npm install -g deno@2.9.6
WORKDIR /basalt
COPY . .
RUN deno install --frozen
EXPOSE 20160 20180
VOLUME /basalt/data
# The store itself, not `deno task serve`: the library is installed above, so no step needs -A,
# and the store is PID 1 and receives SIGTERM. Its permissions are exactly its addresses, its
# data directory, the code its workers load and the RocksDB library (under /usr/lib).
ENTRYPOINT ["deno", "run", "--no-prompt", \
  "--allow-net=0.0.0.0:20160,0.0.0.0:20180", \
  "--allow-read=/basalt/data,/usr/lib,/basalt/src,/basalt/ffi,/basalt/proto", \
  "--allow-write=/basalt/data", \
  "--allow-ffi", \
  "--allow-env=BASALT_ROCKSDB_LIB,GRPC_DEFAULT_SSL_ROOTS_FILE_PATH,GRPC_EXPERIMENTAL_ENABLE_OUTLIER_DETECTION,GRPC_NODE_DEBUG_SEND_ERROR_DETAILS,GRPC_NODE_TRACE,GRPC_NODE_USE_ALTERNATIVE_RESOLVER,GRPC_NODE_VERBOSITY,GRPC_SSL_CIPHER_SUITES,GRPC_TRACE,GRPC_VERBOSITY,grpc_proxy,http_proxy,https_proxy,no_grpc_proxy,no_proxy", \
  "src/server/main.ts", \
  "--addr", "0.0.0.0:20160", "--status-addr", "0.0.0.0:20180", "--data-dir", "/basalt/data"]
