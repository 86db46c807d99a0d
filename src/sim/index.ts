export {
  type AutoBehaviour,
  type CloseInfo,
  connectSimDaemon,
  daemonUrl,
  type ReceivedByDaemon,
  SimDaemon,
  type SimDaemonOptions,
} from "./daemon.ts";
export {
  type ConnectionClose,
  type ReceivedByServer,
  type SimConnection,
  SimServer,
  type SimServerOptions,
  type SpawningOptions,
  startSimServer,
} from "./makima-server.ts";
export { DEFAULT_WAIT_MS, type Json, type Predicate, Recorder } from "./wait.ts";
