# Varnish Cache 7.1.1 (Debian 12 package varnish) in front of feedlab, configured for all four
# transports: the settings feedlab recommends.
#
#   varnishd -F -a 127.0.0.1:8000 -f "$PWD/deploy/varnish.vcl" -p pipe_timeout=3600 -p send_timeout=86400
#
# What Varnish must be told, transport by transport
# (https://varnish-cache.org/docs/7.1/users-guide/vcl-example-websockets.html):
# - WebSocket: `return (pipe)` for Upgrade requests, and the Upgrade/Connection headers copied
#   onto the backend request in vcl_pipe. A piped connection is cut after pipe_timeout quiet
#   (60 s by default): raised below.
# - SSE: streamed (beresp.do_stream), never gzip'd by Varnish (do_gzip would hold data).
# - Polls, long polls and SSE: a live feed is not cacheable; `pass` sends each request to the
#   server without request coalescing (a long poll otherwise waits behind another client's).
# - send_timeout (600 s) is a total per response, which would cut every SSE stream after
#   10 minutes: raised below.
# The varnishd parameters loadgen passes (lines read by loadgen, keep the form):
# varnishd-param: pipe_timeout=3600
# varnishd-param: send_timeout=86400
# loadgen rewrites: .host and .port (one backend) and starts varnishd with -a on a free
# loopback port.

vcl 4.1;

backend default {
    .host = "127.0.0.1";
    .port = "8080";
    .first_byte_timeout = 75s;
    .between_bytes_timeout = 75s;
}

sub vcl_recv {
    if (req.http.Upgrade ~ "(?i)websocket") {
        return (pipe);
    }
    return (pass);
}

sub vcl_pipe {
    if (req.http.Upgrade) {
        set bereq.http.Upgrade = req.http.Upgrade;
        set bereq.http.Connection = req.http.Connection;
    }
}

sub vcl_backend_response {
    if (beresp.http.Content-Type ~ "^text/event-stream") {
        set beresp.do_stream = true;
        set beresp.do_gzip = false;
    }
}
