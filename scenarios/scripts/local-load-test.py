# A local load test: two HTTP servers on loopback, N requests (argv[1], default 600) alternating
# between them.
import http.server, socketserver, sys, threading, urllib.request
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
servers = []
for _ in range(2):
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    servers.append(srv)
ok = 0
for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 600):
    port = servers[i % 2].server_address[1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
        ok += r.status == 200
print("ok", ok)
