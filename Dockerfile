# kt: the console/API (`kt serve`) and the gateway worker (`kt gateway run`) in one image.
#
#   docker build -t kt:latest .
#   docker run -p 3000:3000 -e KT_MASTER_KEY=… -e KT_DATABASE_URL=postgres://… kt:latest
#
# Stage 1 builds the binary (release) and the console's browser bundle; stage 2 is a small
# Debian runtime with only what kt calls at run time (CA certificates for vendor TLS, git for
# Git-backed configuration), running as an unprivileged user.

FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-unknown-unknown \
 && apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The wasm-bindgen CLI must match the crate version pinned in Cargo.lock.
RUN cargo install wasm-bindgen-cli --version "$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)" \
 && (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
 && cargo build --release -p frontend --lib --target wasm32-unknown-unknown \
 && mkdir -p /out/site/pkg \
 && wasm-bindgen --target web --no-typescript --out-dir /out/site/pkg --out-name kt \
      target/wasm32-unknown-unknown/release/frontend.wasm \
 && cp style/main.css /out/site/pkg/kt.css && cp public/* /out/site/ \
 && cp end2end/node_modules/echarts/dist/echarts.min.js /out/site/ \
 && cargo build --release -p server \
 && cp target/release/kt /out/kt

FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates git >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/kt --create-home kt
COPY --from=build /out/kt /usr/local/bin/kt
COPY --from=build /out/site /usr/local/share/kt/site
ENV KT_SITE_DIR=/usr/local/share/kt/site \
    KT_DATA_DIR=/var/lib/kt \
    KT_ADDR=0.0.0.0:3000
USER 10001
WORKDIR /var/lib/kt
EXPOSE 3000 8080
ENTRYPOINT ["kt"]
CMD ["serve"]
