# The proxy of deploy/compose.yaml: Debian's nginx package (the version tests/test_reliability_proxy.py runs),
# configured by deploy/nginx.conf, which compose mounts as /etc/nginx/nginx.conf.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/*
EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
