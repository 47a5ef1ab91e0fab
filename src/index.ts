// ringkv's public entry point: the client library. The engine and the
// server are separate entry points (`ringkv/engine`, `ringkv/server`).
export * from './client/index.js';
