import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Every command the README shows must run as written on a fresh clone (issue 17, fault 6), and
// nothing it suggests may resolve to a package outside the workspace (no `npx`).
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const docs = [README, ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => readFileSync(join(ROOT, 'docs', f), 'utf8'))];

/** The lines of the README's fenced shell blocks. */
function shellLines(md: string): string[] {
  const out: string[] = [];
  const re = /```(?:bash|sh|shell)\n([\s\S]*?)```/g;
  for (let m = re.exec(md); m; m = re.exec(md)) out.push(...(m[1] as string).split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean));
  return out;
}

describe('the README\'s commands', () => {
  it('the quickstart is exactly two commands: install and run the demo, install and run the tests', () => {
    const quick = /## Quickstart[\s\S]*?```bash\n([\s\S]*?)```/.exec(README)?.[1]?.trim().split('\n').map((l) => l.replace(/\s+#.*$/, '').trim());
    expect(quick).toEqual(['npm install && npm run demo', 'npm install && npm test']);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.demo).toMatch(/^npm run build && node packages\/cli\/bin\/dda\.js demo$/);
    expect(pkg.scripts.test).toMatch(/^npm run build && /);
  });

  it('suggests nothing that npm could fetch from the registry: no npx, the CLI through the workspace', () => {
    for (const d of docs) expect(d).not.toMatch(/\bnpx\s/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.dda).toBe('node packages/cli/bin/dda.js');
    // The bin is a committed file, so `npm install` links it before anything is built.
    const cli = JSON.parse(readFileSync(join(ROOT, 'packages/cli/package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(cli.bin).toEqual({ dda: 'bin/dda.js' });
    expect(execFileSync('git', ['ls-files', 'packages/cli/bin/dda.js'], { cwd: ROOT, encoding: 'utf8' }).trim()).toBe('packages/cli/bin/dda.js');
    const linked = join(ROOT, 'node_modules/.bin/dda');
    expect(existsSync(linked)).toBe(true);
    expect(realpathSync(linked)).toBe(realpathSync(join(ROOT, 'packages/cli/bin/dda.js')));
    const r = spawnSync(linked, ['--help'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dda <command>/);
  });

  it('every `npm run -s dda -- <command>` line names a command and options the CLI has', () => {
    const lines = docs.flatMap(shellLines).filter((l) => l.includes('npm run -s dda --'));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) {
      const args = (line.split('npm run -s dda --')[1] as string).trim().split(/\s+/);
      // A command and its subcommand (`index build`), or a command.
      const command = args.slice(0, args[1] !== undefined && !args[1].startsWith('-') ? 2 : 1);
      const r = spawnSync(process.execPath, [join(ROOT, 'packages/cli/bin/dda.js'), ...command, '--help'], { encoding: 'utf8' });
      expect(r.status, `${line}: ${r.stderr}`).toBe(0);
      for (const flag of args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0] as string)) {
        expect(r.stdout, `${flag} of: ${line}`).toContain(`${flag} `);
      }
    }
  });
});

describe('the README\'s architecture section', () => {
  it('names every workspace folder (datasets/, packages/, plugins/) and none that is not there', () => {
    const block = /## Architecture\n\n```\n([\s\S]*?)```/.exec(README)?.[1] ?? '';
    const named = block.split('\n').map((l) => /^((?:datasets|packages|plugins)\/[\w-]+)\s/.exec(l)?.[1]).filter((x): x is string => x !== undefined);
    const folders = ['datasets', 'packages', 'plugins'].flatMap((d) => readdirSync(join(ROOT, d), { withFileTypes: true }).filter((e) => e.isDirectory() && existsSync(join(ROOT, d, e.name, 'package.json'))).map((e) => `${d}/${e.name}`));
    expect([...named].sort()).toEqual([...folders].sort());
  });
});
