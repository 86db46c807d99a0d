// An HTTP CONNECT proxy for the upstream link's tests: the `proxy` package
// (a maintained Node.js proxy) on 127.0.0.1, port 0. Prints {"port":N} first,
// then one JSON line per CONNECT: {"event":"connect","target","auth","outcome"},
// auth being the Proxy-Authorization header as received (or null), outcome
// "tunnel", "407" or "403". Arguments: `--auth user:pass` to require Basic
// credentials. Lines on stdin steer it: `deny` answers every CONNECT 403,
// `allow` ends that, `drop` closes every open tunnel.
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { createProxy } from "proxy";

const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const authAt = process.argv.indexOf("--auth");
const expected =
  authAt > 0 ? `Basic ${Buffer.from(process.argv[authAt + 1]).toString("base64")}` : null;

let deny = false;
const tunnels = new Set();
const server = createProxy(createServer());
server.authenticate = (req) => {
  const ok = expected === null || req.headers["proxy-authorization"] === expected;
  if (!ok)
    say({
      event: "connect",
      target: req.url,
      auth: req.headers["proxy-authorization"] ?? null,
      outcome: "407",
    });
  return ok;
};

// In front of the package's own CONNECT handler: refusals, and a record of each tunnel.
const [tunnel] = server.listeners("connect");
server.removeAllListeners("connect");
server.on("connect", (req, socket, head) => {
  socket.on("error", () => {});
  const auth = req.headers["proxy-authorization"] ?? null;
  if (deny) {
    say({ event: "connect", target: req.url, auth, outcome: "403" });
    socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  if (expected === null || auth === expected)
    say({ event: "connect", target: req.url, auth, outcome: "tunnel" });
  tunnels.add(socket);
  socket.on("close", () => tunnels.delete(socket));
  tunnel.call(server, req, socket, head);
});

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "deny") deny = true;
  else if (line === "allow") deny = false;
  else if (line === "drop") for (const socket of tunnels) socket.destroy();
  say({ event: "told", line });
});
process.stdin.on("end", () => process.exit(0));
server.listen(0, "127.0.0.1", () => say({ port: server.address().port }));
