// A WebSocket server of another implementation (the `ws` package under Node.js)
// for the upstream client's conformance tests. Listens on 127.0.0.1, port 0,
// prints {"port":N} as its first line on stdout, then one JSON line per event
// (open, message, pong, close, error). A client steers it with JSON text
// messages: {"do":"echo","text"}, {"do":"ping","data"}, {"do":"close","code","reason"},
// {"do":"fragments","parts":[...]}, {"do":"big","bytes"}, and {"do":"raw","hex"},
// which writes bytes to the TCP socket as they are (frames ws would never send).
// Paths under /bad/ answer the opening handshake wrongly instead.
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { WebSocketServer } from "ws";

const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const accept = (key) =>
  createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");

const BAD_ANSWERS = {
  status200: () => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
  redirect: () => "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
  http10: (key) =>
    `HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`,
  noAccept: () =>
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
  wrongAccept: () =>
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept("another key")}\r\n\r\n`,
  noUpgrade: (key) =>
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`,
  extension: (key) =>
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`,
};

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
let connections = 0;

function command(ws, id, text) {
  let cmd;
  try {
    cmd = JSON.parse(text);
  } catch {
    cmd = { do: "echo", text };
  }
  if (cmd.do === "echo") ws.send(cmd.text);
  else if (cmd.do === "ping") ws.ping(cmd.data);
  else if (cmd.do === "close") ws.close(cmd.code, cmd.reason);
  else if (cmd.do === "big") ws.send("x".repeat(cmd.bytes));
  else if (cmd.do === "raw") ws._socket.write(Buffer.from(cmd.hex, "hex"));
  else if (cmd.do === "fragments")
    cmd.parts.forEach((part, i) => {
      ws.send(part, { fin: i === cmd.parts.length - 1 });
    });
  else say({ event: "error", id, message: `unknown command ${text.slice(0, 80)}` });
}

wss.on("connection", (ws, req) => {
  const id = ++connections;
  say({ event: "open", id, path: req.url });
  ws.on("message", (data, isBinary) => {
    const text = data.toString();
    say({ event: "message", id, bytes: data.length, text: text.slice(0, 200) });
    if (!isBinary) command(ws, id, text);
  });
  ws.on("pong", (data) => say({ event: "pong", id, data: data.toString() }));
  ws.on("close", (code, reason) => say({ event: "close", id, code, reason: reason.toString() }));
  ws.on("error", (err) => say({ event: "error", id, message: err.message }));
});

const server = createServer((_req, res) => res.writeHead(426).end("WebSocket only"));
server.on("upgrade", (req, socket, head) => {
  // A client that refuses the answer resets the connection: that is expected here.
  socket.on("error", (err) => say({ event: "socket-error", message: err.message }));
  const bad = /^\/bad\/(\w+)/.exec(req.url ?? "");
  if (bad) {
    const answer = BAD_ANSWERS[bad[1]];
    socket.end(
      answer ? answer(req.headers["sec-websocket-key"]) : "HTTP/1.1 404 Not Found\r\n\r\n",
    );
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
});
server.listen(0, "127.0.0.1", () => say({ port: server.address().port }));
// The test's end is this process's end.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
