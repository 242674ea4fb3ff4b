# Basalt store image. Written and read here; no Docker engine runs in this build environment,
# so this file is checked by reading only.
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
ENTRYPOINT ["deno", "task", "serve", "--addr", "0.0.0.0:20160", "--status-addr", "0.0.0.0:20180"]
