import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlDriver } from '../src/store/driver.js';
import { openPgDriver } from '../src/store/pg-driver.js';
import { openPgliteDriver } from '../src/store/pglite-driver.js';
import { availableBackends, dropSchema, POSTGRES_URL } from './helpers/backends.js';

const backends = await availableBackends();

// Named (prepared) statements: PGlite's are spoken in the wire protocol by our driver, so they
// must answer exactly what an unnamed query answers, types included, in and out of transactions.
describe.each(backends)('prepared statements on %s', (backend) => {
  let driver: SqlDriver;
  const schema = `t_${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    driver =
      backend === 'postgres'
        ? await openPgDriver({ url: POSTGRES_URL, schema, poolSize: 2 })
        : await openPgliteDriver({ dataDir: 'memory://', schema: 'public' });
    await driver.exec('create table items (id text primary key, n int not null, tags text[] not null, meta jsonb, at timestamptz not null default now())');
  });
  afterAll(async () => {
    await driver.close();
    if (backend === 'postgres') await dropSchema(schema);
  });

  const INSERT =
    'insert into items (id, n, tags, meta) select i, n, array[t], m from unnest($1::text[], $2::int[], $3::text[], $4::jsonb[]) as u(i, n, t, m) returning id, n, meta';
  const SELECT = 'select id, n, tags, meta, at from items where id = any($1::text[]) order by id';

  it('answers as an unnamed query does, on first use and after, with arrays, json and timestamps', async () => {
    const inserted = await driver.query(
      INSERT,
      [
        ['a', 'b'],
        [1, 2],
        ['x', 'y'],
        [JSON.stringify({ k: 1 }), null],
      ],
      'items_insert',
    );
    expect(inserted).toEqual([
      { id: 'a', n: 1, meta: { k: 1 } },
      { id: 'b', n: 2, meta: null },
    ]);
    for (let round = 0; round < 7; round++) {
      // Past the fifth execution PostgreSQL may switch to a generic plan: answers must not change.
      const named = await driver.query<{ id: string; at: Date }>(SELECT, [['a', 'b']], 'items_select');
      const unnamed = await driver.query<{ id: string; at: Date }>(SELECT, [['a', 'b']]);
      expect(named).toEqual(unnamed);
      expect(named[0]!.at).toBeInstanceOf(Date);
      expect(named.map((row) => row.id)).toEqual(['a', 'b']);
    }
  });

  it('joins the transaction it runs in: a failure rolls the transaction back and the statement works again', async () => {
    await expect(
      driver.transaction(async (tx) => {
        await tx.query(INSERT, [['c'], [3], ['z'], [null]], 'items_insert');
        await tx.query(INSERT, [['a'], [9], ['dup'], [null]], 'items_insert'); // duplicate key
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await driver.query(SELECT, [['c']], 'items_select')).toEqual([]);

    await driver.transaction(async (tx) => {
      await tx.query(INSERT, [['c'], [3], ['z'], [null]], 'items_insert');
      expect((await tx.query<{ n: number }>(SELECT, [['c']], 'items_select'))[0]!.n).toBe(3);
    });
    expect((await driver.query<{ tags: string[] }>(SELECT, [['c']], 'items_select'))[0]!.tags).toEqual(['z']);
  });

  it('runs concurrent named and unnamed queries without mixing their answers', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0 ? driver.query<{ id: string }>(SELECT, [[i % 4 === 0 ? 'a' : 'b']], 'items_select') : driver.query<{ id: string }>(SELECT, [['c']]),
      ),
    );
    answers.forEach((rows, i) => expect(rows.map((row) => row.id)).toEqual([i % 2 === 0 ? (i % 4 === 0 ? 'a' : 'b') : 'c']));
  });
});
