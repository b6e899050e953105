# Varnish Cache 7.1.1 (Debian 12 package varnish) in front of feedlab with its DEFAULTS: the
# package's /etc/varnish/default.vcl (a backend and empty subroutines, so the built-in VCL
# decides everything) and varnishd's default parameters.
# deploy/varnish.vcl is the recommended configuration.
#
# What the built-in VCL and defaults do (https://varnish-cache.org/docs/7.1/users-guide/vcl-built-in-code.html,
# https://varnish-cache.org/docs/7.1/reference/varnishd.html):
# - GET/HEAD are looked up in the cache (hash); concurrent misses for one URL wait for each
#   other (request coalescing) unless the response is uncacheable.
# - An Upgrade request is not piped: the hop-by-hop Upgrade header is not passed, so the
#   WebSocket handshake fails.
# - Streaming is on (beresp.do_stream, default since 4.0).
# - Parameters: between_bytes_timeout 60 s, first_byte_timeout 60 s, pipe_timeout 60 s,
#   send_timeout 600 s (a total for sending one response: a longer SSE stream is cut).
# loadgen rewrites: .host and .port (one backend; several instances need vmod_directors) and
# starts varnishd with -a on a free loopback port.

vcl 4.1;

backend default {
    .host = "127.0.0.1";
    .port = "8080";
}

sub vcl_recv {
}

sub vcl_backend_response {
}

sub vcl_deliver {
}
