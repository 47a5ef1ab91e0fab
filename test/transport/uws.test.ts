// Runs in its own worker (pool: forks), so re-loading uWS here does not leak.
import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';

describe('uWS native check', () => {
  it('the native build is loaded here', async () => {
    const m = await import('../../src/transport/uws.js');
    const s = m.uwsNativeStatus();
    expect(s, s.reason).toMatchObject({ native: true });
    expect(s.file).toMatch(/\.node$/);
    expect(() => m.assertNativeUws()).not.toThrow();
  });

  it('detects the silent JavaScript fallback', async () => {
    const require = createRequire(import.meta.url);
    const loader = require.resolve('uWebSockets.js');
    const saved = require.cache[loader];
    const savedEnv = process.env.UWS_USE_FALLBACK;
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      delete require.cache[loader];
      process.env.UWS_USE_FALLBACK = '1';
      vi.resetModules();
      const m = await import('../../src/transport/uws.js');
      const s = m.uwsNativeStatus();
      expect(s.native).toBe(false);
      expect(s.reason).toMatch(/fallback/);
      expect(() => m.assertNativeUws()).toThrow(/refuses to start/);
    } finally {
      log.mockRestore();
      if (savedEnv === undefined) delete process.env.UWS_USE_FALLBACK;
      else process.env.UWS_USE_FALLBACK = savedEnv;
      if (saved) require.cache[loader] = saved;
      vi.resetModules();
    }
  });
});
