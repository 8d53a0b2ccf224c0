#!/usr/bin/env node
// Part of `npm test`: makes sure the machine has what the test suite needs besides Node, and
// installs and starts what is missing, so that `npm install && npm test` passes on a fresh Debian
// or Ubuntu machine as written in the README.
//
// The suite needs, besides npm's packages:
//   - Chromium, for the browser checks of every HTML page and report (Debian: chromium);
//   - a running SLURM cluster, for the sharding tests of `dda slurm` (Debian: slurm-wlm, munge,
//     then scripts/start-slurm.sh starts a one-node cluster);
//   - NumPy under /usr/bin/python3, to read the score matrix the way users do (Debian: python3-numpy).
//
// What is missing is installed with apt-get when this runs as root (or with passwordless sudo);
// otherwise it prints what to install and the tests that need it fail naming it.
// DDA_TEST_SETUP=0 skips this step; DDA_CHROMIUM points at another Chromium executable.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (process.env.DDA_TEST_SETUP === '0') process.exit(0);

const ok = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const out = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
};
const log = (line) => process.stdout.write(`test setup: ${line}\n`);

const chromium = () => existsSync(process.env.DDA_CHROMIUM ?? '/usr/bin/chromium');
const slurmInstalled = () => ['munged', 'slurmctld', 'slurmd', 'sinfo'].every((b) => ok('sh', ['-c', `command -v ${b}`]));
const slurmRunning = () => slurmInstalled() && /idle|mixed|alloc/.test(out('sinfo', ['-h', '-o', '%T']));
const numpy = () => existsSync('/usr/bin/python3') && ok('/usr/bin/python3', ['-c', 'import numpy']);

/** Debian packages of each missing need. */
const missing = [
  ...(chromium() ? [] : [{ what: 'Chromium (browser checks of the HTML pages)', packages: ['chromium'] }]),
  ...(slurmInstalled() ? [] : [{ what: 'SLURM (the dda slurm sharding tests)', packages: ['slurm-wlm', 'munge'] }]),
  ...(numpy() ? [] : [{ what: 'NumPy under /usr/bin/python3 (reading scores.npy)', packages: ['python3-numpy'] }]),
];

const root = process.getuid?.() === 0;
const sudo = root ? [] : ok('sudo', ['-n', 'true']) ? ['sudo', '-n'] : null;
const run = (args) => {
  const [cmd, ...rest] = [...(sudo ?? []), ...args];
  return spawnSync(cmd, rest, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
};

if (missing.length > 0) {
  const packages = missing.flatMap((m) => m.packages);
  log(`missing ${missing.map((m) => m.what).join('; ')}`);
  if (sudo === null || !ok('sh', ['-c', 'command -v apt-get'])) {
    log(`cannot install them here (needs apt-get as root or passwordless sudo): install ${packages.join(' ')} yourself (Debian/Ubuntu: sudo apt-get install -y --no-install-recommends ${packages.join(' ')}); the tests that need them will fail naming what is missing`);
  } else {
    log(`installing ${packages.join(' ')} with apt-get`);
    const installed = run(['apt-get', 'update', '-q']) && run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...packages]);
    if (!installed) log(`apt-get could not install ${packages.join(' ')}; the tests that need them will fail naming what is missing`);
  }
}

if (slurmInstalled() && !slurmRunning()) {
  if (sudo === null) log('SLURM is installed but no cluster runs: start one with `sudo bash scripts/start-slurm.sh`; the dda slurm tests will fail until then');
  else if (!run(['bash', 'scripts/start-slurm.sh'])) log('scripts/start-slurm.sh could not start the one-node SLURM cluster; the dda slurm tests will fail');
}

const have = [chromium() ? 'Chromium' : null, slurmRunning() ? 'SLURM' : null, numpy() ? 'NumPy' : null].filter(Boolean);
log(`${have.length === 3 ? 'ready' : 'partly ready'}: ${have.join(', ') || 'none of Chromium, SLURM, NumPy'}`);
