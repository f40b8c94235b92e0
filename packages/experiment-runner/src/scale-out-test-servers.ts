// Test helpers (not exported): real Redis and Slurm servers on this machine, on loopback, in temp
// folders, started by the tests and stopped by them. Each start returns a reason when it cannot.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export type Started<T> = { ok: true; value: T; stop(): Promise<void> } | { ok: false; reason: string };

function which(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    if (dir && existsSync(join(dir, binary))) return join(dir, binary);
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs} ms`);
    await sleep(100);
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited(child);
  clearTimeout(timer);
}

/** redis-server on 127.0.0.1, a free port, no persistence, its files in `dir`. */
export async function startRedis(dir: string): Promise<Started<{ url: string }>> {
  const binary = which('redis-server');
  if (!binary) return { ok: false, reason: 'redis-server is not installed (.ci/install-scale-out.sh installs it with apt-get)' };
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  try {
    await until('redis-server', () => /Ready to accept connections/.test(output) || child.exitCode !== null, 10_000);
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${output.slice(-500)}`);
  } catch (error) {
    await stopChild(child);
    return { ok: false, reason: (error as Error).message };
  }
  return { ok: true, value: { url: `redis://127.0.0.1:${port}` }, stop: () => stopChild(child) };
}

function killPidFile(path: string): void {
  try {
    process.kill(Number(readFileSync(path, 'utf8').trim()), 'SIGTERM');
  } catch {
    // not running
  }
}

/**
 * munged + slurmctld + slurmd on localhost (one node, 4 CPUs), as root, with proctrack/linuxproc and
 * task/none so no cgroups are needed. Sets nothing globally: pass `env` (SLURM_CONF) to sbatch/squeue.
 */
export async function startSlurm(dir: string): Promise<Started<{ env: NodeJS.ProcessEnv; conf: string }>> {
  const missing = ['munged', 'mungekey', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'sinfo'].filter((b) => !which(b));
  if (missing.length) return { ok: false, reason: `Slurm is not installed (missing ${missing.join(', ')}; .ci/install-scale-out.sh installs slurmctld slurmd munge with apt-get)` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'a test Slurm cluster runs its daemons as root (SlurmUser=root); the tests are not running as root' };
  const [ctlPort, dPort] = [await freePort(), await freePort()];
  for (const sub of ['munge', 'state', 'spool', 'log']) mkdirSync(join(dir, sub), { recursive: true });
  chmodSync(join(dir, 'munge'), 0o700);
  const key = join(dir, 'munge', 'munge.key');
  const socket = join(dir, 'munge', 'munge.sock');
  const conf = join(dir, 'slurm.conf');
  const stopAll = async () => {
    killPidFile(join(dir, 'slurmd.pid'));
    killPidFile(join(dir, 'slurmctld.pid'));
    await sleep(300);
    killPidFile(join(dir, 'munge', 'munged.pid'));
  };
  try {
    execFileSync('mungekey', ['-c', '-k', key, '-b', '1024', '-f'], { stdio: 'pipe' });
    chmodSync(key, 0o400);
    execFileSync('munged', [`--key-file=${key}`, `--socket=${socket}`, `--pid-file=${join(dir, 'munge', 'munged.pid')}`, `--log-file=${join(dir, 'munge', 'munged.log')}`, `--seed-file=${join(dir, 'munge', 'seed')}`, '--force'], { stdio: 'pipe' });
    writeFileSync(
      conf,
      [
        'ClusterName=labtest',
        'SlurmctldHost=localhost',
        'SlurmUser=root',
        'SlurmdUser=root',
        'AuthType=auth/munge',
        `AuthInfo=socket=${socket}`,
        'CredType=cred/munge',
        `SlurmctldPort=${ctlPort}`,
        `SlurmdPort=${dPort}`,
        `StateSaveLocation=${join(dir, 'state')}`,
        `SlurmdSpoolDir=${join(dir, 'spool')}`,
        `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
        `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
        `SlurmctldLogFile=${join(dir, 'log', 'slurmctld.log')}`,
        `SlurmdLogFile=${join(dir, 'log', 'slurmd.log')}`,
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'JobAcctGatherType=jobacct_gather/none',
        'AccountingStorageType=accounting_storage/none',
        'JobCompType=jobcomp/none',
        'SchedulerType=sched/builtin',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_Core',
        // The node claims 4 CPUs on a 2-core machine: short fake trials, several at once.
        'SlurmdParameters=config_overrides',
        'ReturnToService=2',
        'MpiDefault=none',
        'MinJobAge=300',
        'NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=4 RealMemory=1000 State=UNKNOWN',
        'PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES',
        '',
      ].join('\n'),
    );
    const env = { ...process.env, SLURM_CONF: conf };
    execFileSync('slurmctld', ['-c', '-i'], { env, stdio: 'pipe' });
    await sleep(500);
    execFileSync('slurmd', ['-N', 'localhost'], { env, stdio: 'pipe' });
    await until('slurm node idle', () => {
      try {
        return /idle/.test(execFileSync('sinfo', ['-h', '-o', '%T'], { env, stdio: 'pipe' }).toString());
      } catch {
        return false;
      }
    }, 20_000);
    return { ok: true, value: { env, conf }, stop: stopAll };
  } catch (error) {
    await stopAll();
    const logs = ['slurmctld.log', 'slurmd.log'].map((f) => join(dir, 'log', f)).filter(existsSync).map((f) => `${f}: ${readFileSync(f, 'utf8').split('\n').slice(-4).join(' | ')}`);
    return { ok: false, reason: `Slurm did not start: ${(error as Error).message.split('\n')[0]}${logs.length ? ` (${logs.join('; ')})` : ''}` };
  }
}
