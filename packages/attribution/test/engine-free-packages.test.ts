import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BUILTIN_ENGINE_PLUGINS, BUILTIN_PLUGINS } from '@dda/attribution';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Manifest {
  readonly name: string;
  readonly dependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  readonly devDependencies?: Record<string, string>;
}

/** Every workspace package's package.json, by name. */
function workspace(): Map<string, { dir: string; manifest: Manifest }> {
  const out = new Map<string, { dir: string; manifest: Manifest }>();
  for (const group of ['packages', 'plugins', 'datasets']) {
    for (const d of readdirSync(join(ROOT, group))) {
      const file = join(ROOT, group, d, 'package.json');
      if (!existsSync(file)) continue;
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
      out.set(manifest.name, { dir: `${group}/${d}`, manifest });
    }
  }
  return out;
}

/** What installing `name` brings: its dependencies and required peers, transitively within the workspace (optional peers and dev dependencies are not installed with it). */
function installs(name: string, ws: ReturnType<typeof workspace>, seen = new Set<string>()): Set<string> {
  const m = ws.get(name)?.manifest;
  if (m === undefined || seen.has(name)) return seen;
  seen.add(name);
  const peers = Object.keys(m.peerDependencies ?? {}).filter((p) => m.peerDependenciesMeta?.[p]?.optional !== true);
  for (const d of [...Object.keys(m.dependencies ?? {}), ...peers]) {
    if (ws.has(d)) installs(d, ws, seen);
    else seen.add(d);
  }
  return seen;
}

const ENGINE_LIBRARY = /^(@tensorflow\/tfjs|onnxruntime-)/;

describe('engine-free host packages (issue 25)', () => {
  const ws = workspace();

  it('no package under packages/ but the dda command brings tfjs or onnxruntime when installed', () => {
    const hosts = [...ws.values()].filter((p) => p.dir.startsWith('packages/') && p.manifest.name !== '@dda/cli');
    expect(hosts.length).toBeGreaterThan(8);
    for (const p of hosts) {
      const engineLibs = [...installs(p.manifest.name, ws)].filter((d) => ENGINE_LIBRARY.test(d));
      expect(engineLibs, `${p.manifest.name} (${p.dir}) would install ${engineLibs.join(', ')}`).toEqual([]);
    }
  });

  it('the dda command installs the built-in engines, which the attribution takes as optional peers', () => {
    const cli = installs('@dda/cli', ws);
    for (const e of BUILTIN_ENGINE_PLUGINS) expect(cli.has(e), e).toBe(true);
    expect([...cli].some((d) => d.startsWith('@tensorflow/tfjs'))).toBe(true);
    const attribution = ws.get('@dda/attribution')?.manifest as Manifest;
    for (const e of BUILTIN_ENGINE_PLUGINS) {
      expect(attribution.peerDependenciesMeta?.[e]?.optional, e).toBe(true);
      expect(attribution.dependencies?.[e], e).toBeUndefined();
      expect(BUILTIN_PLUGINS).toContain(e);
    }
    // Every other built-in plugin is a dependency of the attribution, which loads it by name.
    for (const p of BUILTIN_PLUGINS.filter((x) => !BUILTIN_ENGINE_PLUGINS.includes(x))) expect(attribution.dependencies?.[p], p).toBeDefined();
  });
});
