/**
 * The parts of undici nixreg uses, loaded one by one. `import 'undici'` evaluates its whole index (fetch, WebSocket,
 * cookies, caches, mock agents, …) at start-up of every command: measured 85-130 ms, against 30-45 ms for these
 * modules. The index also installs the promise API (request, stream, pipeline, connect, upgrade) on
 * Dispatcher.prototype: done here the same way (the proxy agent's tunnels call `connect`).
 */
import Agent from 'undici/lib/dispatcher/agent.js';
import Client from 'undici/lib/dispatcher/client.js';
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import EnvHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js';
import Pool from 'undici/lib/dispatcher/pool.js';
import buildConnector from 'undici/lib/core/connect.js';
import api from 'undici/lib/api/index.js';

Object.assign(Dispatcher.prototype, api);

export { Agent, Client, EnvHttpProxyAgent, Pool, buildConnector };
export type { Dispatcher } from 'undici';
