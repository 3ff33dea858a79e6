// Drives the real @microsoft/signalr client in Node for the emulator tests (run by pytest, not by `node --test`).
//
// usage: node signalr_client.mjs '<options as JSON>'
//   options: url, accessToken?      connect to the service URL with this token (what a negotiate function hands out)
//            transport              "WebSockets" | "ServerSentEvents" | "LongPolling" | "all"
//            protocol               "json" | "messagepack"
//            methods                client method names to listen to
//            reconnect              true: withAutomaticReconnect([0, 200, 500])
//            block                  transports whose network path is "blocked" (constructor fails) to exercise fallback
//            stateful               true: withStatefulReconnect() (the emulator does not offer it; the client must cope)
// stdout: one JSON object per line: {"event": "connected"|"message"|"reconnecting"|"reconnected"|"closed"|"result", ...}
// stdin:  one JSON command per line: {"cmd": "invoke", "method": "...", "args": [...]} | {"cmd": "stop"}
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import WebSocketModule from "ws";
import EventSourceModule from "eventsource";
import readline from "node:readline";

const opts = JSON.parse(process.argv[2]);
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const transports = {
  WebSockets: signalR.HttpTransportType.WebSockets,
  ServerSentEvents: signalR.HttpTransportType.ServerSentEvents,
  LongPolling: signalR.HttpTransportType.LongPolling,
  all: signalR.HttpTransportType.WebSockets | signalR.HttpTransportType.ServerSentEvents
    | signalR.HttpTransportType.LongPolling,
};

class BlockedWebSocket {
  constructor() { throw new Error("WebSockets are blocked on this network (test)"); }
}
class BlockedEventSource {
  constructor() { throw new Error("Server-Sent Events are blocked on this network (test)"); }
}

const block = new Set(opts.block || []);
const httpOptions = {
  transport: transports[opts.transport || "all"],
  WebSocket: block.has("WebSockets") ? BlockedWebSocket : WebSocketModule,
  EventSource: block.has("ServerSentEvents") ? BlockedEventSource : EventSourceModule,
};
if (opts.accessToken) httpOptions.accessTokenFactory = () => opts.accessToken;

let builder = new signalR.HubConnectionBuilder()
  .withUrl(opts.url, httpOptions)
  .configureLogging(opts.logLevel ?? signalR.LogLevel.None);
if (opts.protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
if (opts.reconnect) builder = builder.withAutomaticReconnect([0, 200, 500]);
if (opts.stateful) builder = builder.withStatefulReconnect();
const connection = builder.build();
if (opts.serverTimeoutMs) connection.serverTimeoutInMilliseconds = opts.serverTimeoutMs;
if (opts.keepAliveMs) connection.keepAliveIntervalInMilliseconds = opts.keepAliveMs;

for (const method of opts.methods || []) {
  connection.on(method, (...args) => emit({ event: "message", target: method, args }));
}
connection.onreconnecting((error) => emit({ event: "reconnecting", error: error ? String(error.message) : null }));
connection.onreconnected((id) => emit({ event: "reconnected", connectionId: id, transport: transportName() }));
connection.onclose((error) => {
  emit({ event: "closed", error: error ? String(error.message) : null });
  setTimeout(() => process.exit(0), 50);
});

function transportName() {
  const t = connection.connection?.transport;
  return t ? t.constructor.name : null;
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "stop") {
    await connection.stop();
  } else if (command.cmd === "invoke") {
    try {
      const result = await connection.invoke(command.method, ...(command.args || []));
      emit({ event: "result", ok: true, result });
    } catch (error) {
      emit({ event: "result", ok: false, error: String(error.message) });
    }
  }
});
rl.on("close", () => connection.stop());

try {
  await connection.start();
  emit({ event: "connected", connectionId: connection.connectionId, transport: transportName() });
} catch (error) {
  emit({ event: "failed", error: String(error.message) });
  process.exit(2);
}
