#!/usr/bin/env python3
"""A local webhook receiver (:5001) and SMTP sink (:2525) for the example:
prints every notification the alert manager delivers. Standard library only."""
import asyncio, json, threading
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        for a in body["alerts"]:
            print(f"webhook {self.path}: [{a['status']}] {a['labels']} {a['annotations'].get('summary', '')}", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


async def smtp(reader, writer):
    writer.write(b"220 sink ESMTP\r\n")
    data, in_data = [], False
    while line := await reader.readline():
        text = line.decode(errors="replace")
        if in_data:
            if text.rstrip("\r\n") == ".":
                in_data = False
                subject = next((l for l in data if l.startswith("Subject:")), "Subject: ?").strip()
                print(f"email: {subject}", flush=True)
                writer.write(b"250 queued\r\n")
            else:
                data.append(text)
            continue
        cmd = text[:4].upper()
        if cmd == "DATA":
            in_data, data = True, []
            writer.write(b"354 go ahead\r\n")
        elif cmd == "QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()
    writer.close()


async def main():
    threading.Thread(target=HTTPServer(("127.0.0.1", 5001), Hook).serve_forever, daemon=True).start()
    server = await asyncio.start_server(smtp, "127.0.0.1", 2525)
    print("webhook on 127.0.0.1:5001, SMTP on 127.0.0.1:2525", flush=True)
    await server.serve_forever()


asyncio.run(main())
