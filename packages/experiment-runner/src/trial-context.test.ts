import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readMetrics } from './run-folder';
import { checkpointProblem, createTrialContext, readCheckpointRecord, setCheckpointAside } from './trial-context';

function context(runDir: string, attempt = 1) {
  return createTrialContext({ runDir, trialId: 'v0-s1', seed: 1, backend: 'none', attempt, signal: new AbortController().signal });
}

describe('trial context', () => {
  it('checkpoints bytes or JSON; the last save wins and older byte files are removed', () => {
    const runDir = mkdtempSync(join(tmpdir(), 'er-ctx-'));
    const ctx = context(runDir);
    expect(ctx.checkpoint.load()).toBeUndefined();
    ctx.log({ epoch: 1, loss: 0.9 });
    ctx.checkpoint.save(new Uint8Array([1, 2, 3]));
    ctx.log({ epoch: 2, loss: 0.8 });
    ctx.checkpoint.save(new Uint8Array([4, 5]));
    expect(readdirSync(ctx.trialDir).filter((f) => f.endsWith('.bin'))).toHaveLength(1);
    // A restarted trial (new context) gets the bytes back and numbers its lines after the checkpoint.
    const again = context(runDir, 2);
    expect(again.checkpoint.load()).toEqual(new Uint8Array([4, 5]));
    again.log({ epoch: 3, loss: 0.7 });
    expect(readMetrics(runDir).map((l) => [l.seq, l.epoch])).toEqual([[0, 1], [1, 2], [2, 3]]);
    again.checkpoint.save({ epoch: 3 });
    expect(context(runDir).checkpoint.load()).toEqual({ epoch: 3 });
    expect(readdirSync(ctx.trialDir).filter((f) => f.endsWith('.bin'))).toHaveLength(0);
    expect(readdirSync(ctx.trialDir).filter((f) => f.endsWith('.tmp'))).toHaveLength(0);
  });

  it('saves artifacts and figures under the trial folder and rejects names that could escape it', () => {
    const runDir = mkdtempSync(join(tmpdir(), 'er-ctx-'));
    const ctx = context(runDir);
    expect(readFileSync(ctx.artifact('probe 5.json', { gns: 3 }), 'utf8')).toBe('{\n  "gns": 3\n}\n');
    expect(readFileSync(ctx.artifact('raw.bin', new Uint8Array([7])))).toEqual(Buffer.from([7]));
    expect(existsSync(ctx.figure('cosines', { mark: 'rect' }))).toBe(true);
    for (const name of ['../escape.txt', '/etc/x', '.hidden', 'a/b', 'a\\b', '']) {
      expect(() => ctx.artifact(name, 'x'), name).toThrow(/artifact name .*no path separators/);
    }
    expect(() => ctx.figure('../f', {})).toThrow(/figure name/);
  });

  it('names the trial and the metric when a log line is malformed', () => {
    const ctx = context(mkdtempSync(join(tmpdir(), 'er-ctx-')));
    expect(() => ctx.log({ seq: 3 } as never)).toThrow(/ctx\.log\(v0-s1\): metric name "seq" is reserved/);
    expect(() => ctx.log({ acc: [1, 2] } as never)).toThrow(/ctx\.log\(v0-s1\): metric "acc" must be a number, string, boolean or null, got object/);
  });

  it('names a checkpoint.json cut short instead of failing with "Unexpected end of JSON input"', () => {
    const runDir = mkdtempSync(join(tmpdir(), 'er-ctx-'));
    const ctx = context(runDir);
    ctx.log({ epoch: 1 });
    ctx.checkpoint.save({ epoch: 1, weights: [1, 2, 3] });
    const path = join(ctx.trialDir, 'checkpoint.json');
    writeFileSync(path, readFileSync(path, 'utf8').slice(0, 20));
    expect(() => readCheckpointRecord(ctx.trialDir)).toThrow(`checkpoint ${path} is not valid JSON (`);
    expect(checkpointProblem(ctx.trialDir)).toMatch(/^checkpoint .*checkpoint\.json is not valid JSON/);
    // A context over it can still be made (the old code threw there, outside the trial); load() names the file.
    const again = context(runDir, 2);
    expect(() => again.checkpoint.load()).toThrow(`checkpoint ${path} is not valid JSON`);
    const moved = setCheckpointAside(ctx.trialDir, 'T');
    expect(moved).toEqual([`${path}.corrupt-T`]);
    expect(checkpointProblem(ctx.trialDir)).toBeUndefined();
    expect(context(runDir, 3).checkpoint.load()).toBeUndefined();
  });

  it('records the size and hash of checkpoint bytes and names a bytes file that is truncated, damaged or missing', () => {
    const runDir = mkdtempSync(join(tmpdir(), 'er-ctx-'));
    const ctx = context(runDir);
    ctx.log({ epoch: 1 });
    const bytes = new Uint8Array(1000).map((_, i) => i % 251);
    ctx.checkpoint.save(bytes);
    const record = readCheckpointRecord(ctx.trialDir)!;
    expect(record.bytes).toBe(1000);
    // SHA-256 of the bytes 0, 1, ..., 250, 0, 1, ... (1000 of them), from Node's crypto independently of the runner.
    expect(record.sha256).toBe(createHash('sha256').update(Buffer.from(bytes)).digest('hex'));
    const bin = join(ctx.trialDir, record.file!);
    expect(checkpointProblem(ctx.trialDir)).toBeUndefined();

    truncateSync(bin, 600);
    expect(checkpointProblem(ctx.trialDir)).toBe(`checkpoint file ${bin} has 600 bytes, 1000 were saved (truncated)`);
    expect(() => context(runDir, 2).checkpoint.load()).toThrow(`checkpoint file ${bin} has 600 bytes, 1000 were saved (truncated)`);

    const damaged = new Uint8Array(bytes);
    damaged[500] ^= 1;
    writeFileSync(bin, damaged);
    expect(checkpointProblem(ctx.trialDir)).toBe(`checkpoint file ${bin} does not match the SHA-256 saved with it (damaged)`);

    rmSync(bin);
    expect(checkpointProblem(ctx.trialDir)).toBe(`checkpoint ${join(ctx.trialDir, 'checkpoint.json')} names ${bin}, which cannot be read (ENOENT)`);
    expect(() => context(runDir, 3).checkpoint.load()).toThrow(/which cannot be read \(ENOENT\)/);
  });
});
