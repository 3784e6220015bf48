/**
 * The hub's live console (served at /console): sign in with an API key (or a JWT) and a project,
 * then the project's live sessions through a `/dashboard` subscription of the typed client, with
 * filters and sort in the REST grammar, a session panel and a chart of the project's live count.
 * Preact for the DOM; every decision that is not drawing is in model.ts.
 */
import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import {
  DashboardClient,
  FILTER_ATTRIBUTES,
  SORTABLE_ATTRIBUTES,
  SubscribeError,
  type ConnectionState,
  type LiveSubscription,
  type Session,
} from '../src/client/index';
import {
  type ChangeKind,
  type ConsoleQuery,
  type FilterRow,
  type Sample,
  MAX_LIMIT,
  addSample,
  chartArea,
  chartPath,
  compareViews,
  curlForQuery,
  curlForSession,
  defaultQuery,
  describeDevice,
  niceMax,
  readQuery,
  sessionFields,
  timeLive,
  toSubscription,
  writeQuery,
} from './model';

const KEY_STORAGE = 'hub-console-key';
/** How long an added / updated / removed row stays marked. */
const MARK_MS = 1500;
const CHART_WINDOW_MS = 10 * 60_000;
const FILTER_TYPES = Object.keys(FILTER_ATTRIBUTES);

interface Mark {
  kind: ChangeKind;
  until: number;
  /** For a removed row: the session and where it was, so it can fade out in place. */
  session?: Session;
  index?: number;
}

type Status = ConnectionState | 'resynced';

interface Signed {
  client: DashboardClient;
  token: string;
}

// ---------------------------------------------------------------------------------------------
// Connection: one client per sign-in; the list subscription and the project-total subscription.

async function loadWsPath(): Promise<string | undefined> {
  try {
    const res = await fetch('config.json');
    if (!res.ok) return undefined;
    const body = (await res.json()) as { wsPath?: unknown };
    return typeof body.wsPath === 'string' ? body.wsPath : undefined;
  } catch {
    return undefined;
  }
}

function explain(err: unknown, project: string): string {
  if (err instanceof SubscribeError) {
    if (err.code === 'FORBIDDEN') return `This key may not read project ${project}.`;
    return `${err.code}: ${err.message}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (/Authentication error/i.test(message)) return 'The hub refused this API key: check it, or use a JWT with a projectKey claim.';
  return `Could not connect to the hub: ${message}`;
}

async function connect(token: string, project: string): Promise<DashboardClient> {
  const path = await loadWsPath();
  const client = new DashboardClient({ url: location.origin, token, path, reconnectionDelayMs: 500, reconnectionDelayMaxMs: 2000 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const unreachable = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer within 10 s (is the hub running?)')), 10_000);
  });
  try {
    await Promise.race([client.connected(), unreachable]);
    // Checks the key against the project before the console opens.
    const probe = await client.subscribe({ projectKey: project, limit: 1 });
    await probe.unsubscribe();
    return client;
  } catch (err) {
    client.close();
    throw new Error(explain(err, project));
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Sign-in

function SignIn(props: { project: string; error: string; busy: boolean; onSubmit(key: string, project: string): void }) {
  const [key, setKey] = useState('');
  const [project, setProject] = useState(props.project);
  return (
    <main class="signin">
      <h1>Live sessions</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          props.onSubmit(key.trim(), project.trim());
        }}
      >
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autocomplete="off" required value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        <label for="project">Project</label>
        <input id="project" name="project" required spellcheck={false} value={project} onInput={(e) => setProject(e.currentTarget.value)} />
        <button type="submit" disabled={props.busy}>
          {props.busy ? 'Signing in…' : 'Sign in'}
        </button>
        {props.error && (
          <p class="error" role="alert">
            {props.error}
          </p>
        )}
        <p class="hint">The key stays in this tab (session storage); it is never put in the address.</p>
      </form>
    </main>
  );
}

// ---------------------------------------------------------------------------------------------
// Filters and sort

function FilterEditor(props: { query: ConsoleQuery; error: string; onApply(q: ConsoleQuery): void }) {
  const [draft, setDraft] = useState<ConsoleQuery>(props.query);
  useEffect(() => setDraft(props.query), [props.query]);
  const setFilter = (i: number, patch: Partial<FilterRow>) => setDraft({ ...draft, filters: draft.filters.map((f, j) => (j === i ? { ...f, ...patch } : f)) });
  return (
    <form
      class="filters"
      aria-label="Filters and sort"
      onSubmit={(e) => {
        e.preventDefault();
        props.onApply(draft);
      }}
    >
      {draft.filters.map((f, i) => (
        <div class="filter" key={i}>
          <select aria-label="Filter type" value={f.type} onChange={(e) => setFilter(i, { type: e.currentTarget.value })}>
            {FILTER_TYPES.map((t) => (
              <option value={t}>{t}</option>
            ))}
          </select>
          {f.type === 'METADATA' && <input aria-label="Metadata key" placeholder="metadata key" value={f.source} onInput={(e) => setFilter(i, { source: e.currentTarget.value })} />}
          <select aria-label="Operator" value={f.operator} onChange={(e) => setFilter(i, { operator: e.currentTarget.value === 'is' ? 'is' : 'contains' })}>
            <option value="contains">contains</option>
            <option value="is">is</option>
          </select>
          <input
            aria-label="Values"
            placeholder="values, comma-separated (empty: has any)"
            value={f.values.join(', ')}
            onInput={(e) =>
              setFilter(i, {
                values: e.currentTarget.value
                  .split(',')
                  .map((v) => v.trim())
                  .filter(Boolean),
              })
            }
          />
          <button type="button" class="icon" aria-label="Remove filter" title="Remove filter" onClick={() => setDraft({ ...draft, filters: draft.filters.filter((_, j) => j !== i) })}>
            ×
          </button>
        </div>
      ))}
      <div class="sortbar">
        <button type="button" onClick={() => setDraft({ ...draft, filters: [...draft.filters, { type: 'USERID', operator: 'contains', source: '', values: [] }] })}>
          Add filter
        </button>
        <label>
          Sort by{' '}
          <select value={draft.sort} onChange={(e) => setDraft({ ...draft, sort: e.currentTarget.value })}>
            {SORTABLE_ATTRIBUTES.map((a) => (
              <option value={a}>{a}</option>
            ))}
          </select>
        </label>
        <label>
          Order{' '}
          <select value={draft.order} onChange={(e) => setDraft({ ...draft, order: e.currentTarget.value === 'ASC' ? 'ASC' : 'DESC' })}>
            <option value="DESC">descending</option>
            <option value="ASC">ascending</option>
          </select>
        </label>
        <label>
          Limit <input type="number" min={1} max={MAX_LIMIT} value={draft.limit} onInput={(e) => setDraft({ ...draft, limit: Number(e.currentTarget.value) || 1 })} />
        </label>
        <button type="submit" class="primary">
          Apply
        </button>
      </div>
      {props.error && (
        <p class="error" role="alert">
          {props.error}
        </p>
      )}
    </form>
  );
}

// ---------------------------------------------------------------------------------------------
// Chart of the project's live sessions

function Chart(props: { samples: Sample[]; now: number }) {
  const width = 300;
  const height = 56;
  const peak = Math.max(0, ...props.samples.map((s) => s.total));
  const max = niceMax(peak);
  const current = props.samples[props.samples.length - 1]?.total ?? 0;
  // The window grows from the first sample (sign-in) to 10 minutes, so the line fills the chart at once.
  const first = props.samples[0];
  const span = first ? Math.min(CHART_WINDOW_MS, Math.max(60_000, props.now - first.t)) : CHART_WINDOW_MS;
  const minutes = Math.round(span / 60_000);
  const path = chartPath(props.samples, props.now, span, width, height, max);
  return (
    <figure class="chart">
      <svg viewBox={`0 -4 ${width} ${height + 8}`} role="img" aria-label={`Live sessions in the project over the last ${minutes} minutes: ${current} now, ${peak} at most`} preserveAspectRatio="none">
        <line x1="0" x2={width} y1={height} y2={height} class="axis" />
        <line x1="0" x2={width} y1="0" y2="0" class="grid" />
        {path && <path d={chartArea(path, height)} class="area" />}
        {path && <path d={path} class="line" />}
      </svg>
      <figcaption>
        <span title="top of the scale">{max}</span>
        <span>project live, last {minutes} min</span>
        <span>now {current}</span>
      </figcaption>
    </figure>
  );
}

// ---------------------------------------------------------------------------------------------
// The session list and panel

function Copyable(props: { label: string; text: string }) {
  const [copied, setCopied] = useState(false);
  const ref = useRef<HTMLTextAreaElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.text);
    } catch {
      ref.current?.select();
      document.execCommand('copy');
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <div class="copyable">
      <div class="copyhead">
        <span>{props.label}</span>
        <button type="button" onClick={() => void copy()}>
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
      <textarea ref={ref} readOnly rows={props.text.split('\n').length} aria-label={props.label} value={props.text} />
    </div>
  );
}

function SessionPanel(props: { session: Session; query: ConsoleQuery; gone: boolean; onClose(): void }) {
  const close = useRef<HTMLButtonElement>(null);
  useEffect(() => close.current?.focus(), [props.session.sessionID]);
  const s = props.session;
  return (
    <div
      class="panel"
      role="dialog"
      aria-labelledby="panel-title"
      onKeyDown={(e) => {
        if (e.key === 'Escape') props.onClose();
      }}
    >
      <header>
        <h2 id="panel-title">Session {s.sessionID}</h2>
        <button ref={close} type="button" class="icon" aria-label="Close session panel" onClick={props.onClose}>
          ×
        </button>
      </header>
      {props.gone && <p class="note">This session has ended or left the view.</p>}
      <h3>Tabs ({s.tabIds.length})</h3>
      <ul class="tabs">
        {s.tabIds.map((t) => (
          <li key={t}>{t}</li>
        ))}
      </ul>
      <h3>Fields</h3>
      <dl class="fields">
        {sessionFields(s).map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <h3>REST</h3>
      <Copyable label="curl: this list's query" text={curlForQuery(location.origin, props.query)} />
      <Copyable label="curl: this session" text={curlForSession(location.origin, props.query.project, s.sessionID)} />
      <p class="hint">Set HUB_API_KEY to your key first: the commands never contain it.</p>
    </div>
  );
}

function SessionRow(props: { session: Session; mark?: ChangeKind; now: number; selected: boolean; onOpen(): void }) {
  const s = props.session;
  const meta = Object.entries(s.metadata ?? {});
  return (
    <tr
      tabIndex={props.mark === 'removed' ? -1 : 0}
      data-session={s.sessionID}
      data-change={props.mark}
      aria-selected={props.selected}
      class={props.selected ? 'selected' : undefined}
      onClick={props.mark === 'removed' ? undefined : props.onOpen}
      onKeyDown={(e) => {
        if ((e.key === 'Enter' || e.key === ' ') && props.mark !== 'removed') {
          e.preventDefault();
          props.onOpen();
        }
      }}
    >
      <td data-label="User" class="user">
        <span>
          {s.userID || <span class="muted">{s.userAnonymousId || 'anonymous'}</span>}
          {!s.active && <span class="idle" title="no tab is active"> idle</span>}
        </span>
      </td>
      <td data-label="Page">
        <span>{s.pageTitle || <span class="muted">—</span>}</span>
      </td>
      <td data-label="OS / browser / device">
        <span>{describeDevice(s)}</span>
      </td>
      <td data-label="Country">
        <span>{s.userCountry ?? <span class="muted">—</span>}</span>
      </td>
      <td data-label="Metadata" class="meta">
        <span>
          {meta.length === 0 ? (
            <span class="muted">—</span>
          ) : (
            meta.map(([k, v]) => (
              <span class="chip" key={k}>
                {k}={v}
              </span>
            ))
          )}
        </span>
      </td>
      <td data-label="Tabs" class="num">
        <span>{s.tabIds.length}</span>
      </td>
      <td data-label="Live for" class="num">
        <span>{timeLive(props.now, s.timestamp)}</span>
      </td>
    </tr>
  );
}

// ---------------------------------------------------------------------------------------------
// The console once signed in

const STATUS_TEXT: Record<Status, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  resynced: 'Live · resynced',
  refused: 'Refused',
  closed: 'Closed',
};

function Console(props: { signed: Signed; initial: ConsoleQuery; onSignOut(message?: string): void }) {
  const { client } = props.signed;
  const [query, setQuery] = useState(props.initial);
  const [queryError, setQueryError] = useState('');
  const [sessions, setSessions] = useState<Session[]>([]);
  const [total, setTotal] = useState(0);
  const [marks, setMarks] = useState<Map<string, Mark>>(new Map());
  const [status, setStatus] = useState<Status>(client.state);
  const [samples, setSamples] = useState<Sample[]>([]);
  const [now, setNow] = useState(Date.now());
  const [selected, setSelected] = useState<string | undefined>();
  const [loading, setLoading] = useState(true);
  const drawn = useRef(new Map<string, Session>());
  const lastRow = useRef<string | undefined>(undefined);
  const resyncTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  // Connection state, and "resynced" for a moment after a reconnect's resume or fresh snapshot.
  useEffect(() => {
    const off = client.on('state', (state) => {
      if (state === 'refused') props.onSignOut('The hub refused this API key on reconnect.');
      setStatus(state);
    });
    return off;
  }, [client]);
  const showResynced = () => {
    setStatus('resynced');
    clearTimeout(resyncTimer.current);
    resyncTimer.current = setTimeout(() => setStatus((s) => (s === 'resynced' ? 'live' : s)), 5000);
  };

  // The clock: time live, marks fading, the chart moving.
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);

  // The project's total for the chart: an unfiltered subscription of one row.
  useEffect(() => {
    let sub: LiveSubscription | undefined;
    let stopped = false;
    const sample = (total: number) => setSamples((prev) => addSample(prev, { t: Date.now(), total }, CHART_WINDOW_MS));
    client.subscribe({ projectKey: query.project, limit: 1 }).then(
      (s) => {
        if (stopped) return void s.unsubscribe().catch(() => undefined);
        sub = s;
        sample(s.view.total);
        s.on('change', () => sample(s.view.total));
      },
      () => undefined,
    );
    return () => {
      stopped = true;
      void sub?.unsubscribe().catch(() => undefined);
    };
  }, [client, query.project]);

  // The list: a subscription per query; a new query subscribes first and replaces the old one only once accepted.
  useEffect(() => {
    let sub: LiveSubscription | undefined;
    let stopped = false;
    const draw = (s: LiveSubscription, mark: boolean) => {
      const list = s.view.list();
      const t = Date.now();
      if (mark) {
        const changes = compareViews(drawn.current, list);
        const before = [...drawn.current.values()];
        setMarks((prev) => {
          const next = new Map([...prev].filter(([, m]) => m.until > t));
          for (const [id, kind] of changes) {
            if (kind === 'removed') next.set(id, { kind, until: t + MARK_MS, session: drawn.current.get(id), index: before.findIndex((b) => b.sessionID === id) });
            else next.set(id, { kind, until: t + MARK_MS });
          }
          return next;
        });
      }
      drawn.current = new Map(list.map((x) => [x.sessionID, x]));
      setSessions(list);
      setTotal(s.view.total);
    };
    setLoading(true);
    client.subscribe(toSubscription(query)).then(
      (s) => {
        if (stopped) return void s.unsubscribe().catch(() => undefined);
        sub = s;
        setQueryError('');
        setLoading(false);
        setMarks(new Map());
        draw(s, false);
        s.on('change', () => draw(s, true));
        s.on('resync', showResynced);
        s.on('resumed', showResynced);
        s.on('error', (err) => setQueryError(explain(err, query.project)));
      },
      (err: unknown) => {
        if (stopped) return;
        setLoading(false);
        if (err instanceof SubscribeError && err.code === 'FORBIDDEN') props.onSignOut(explain(err, query.project));
        else setQueryError(explain(err, query.project));
      },
    );
    return () => {
      stopped = true;
      void sub?.unsubscribe().catch(() => undefined);
    };
  }, [client, query]);

  const apply = (next: ConsoleQuery) => {
    history.replaceState(null, '', writeQuery(next));
    setQuery(next);
  };

  // Rows: the view, with removed rows fading out where they were.
  const rows = useMemo(() => {
    const out: { session: Session; mark?: ChangeKind }[] = sessions.map((s) => {
      const m = marks.get(s.sessionID);
      return { session: s, mark: m && m.until > now ? m.kind : undefined };
    });
    for (const [id, m] of marks) {
      if (m.kind !== 'removed' || !m.session || m.until <= now || drawn.current.has(id)) continue;
      out.splice(Math.min(m.index ?? out.length, out.length), 0, { session: m.session, mark: 'removed' });
    }
    return out;
  }, [sessions, marks, now]);

  const selectedSession = selected ? (drawn.current.get(selected) ?? marks.get(selected)?.session) : undefined;
  const open = (id: string) => {
    lastRow.current = id;
    setSelected(id);
  };
  const closePanel = () => {
    setSelected(undefined);
    const id = lastRow.current;
    if (id) requestAnimationFrame(() => document.querySelector<HTMLElement>(`tr[data-session="${CSS.escape(id)}"]`)?.focus());
  };

  return (
    <div class={`console${selectedSession ? ' with-panel' : ''}${status === 'live' || status === 'resynced' ? '' : ' stale'}`}>
      <header class="top">
        <h1>Live sessions</h1>
        <span class="project" title="project">
          {query.project}
        </span>
        <span class={`status status-${status}`} role="status" aria-live="polite" data-status={status}>
          {STATUS_TEXT[status]}
        </span>
        <span class="total" data-total={total}>
          <strong>{total}</strong> {query.filters.length ? 'matching' : 'live'}
          {total > sessions.length ? ` (first ${sessions.length} shown)` : ''}
        </span>
        <button type="button" class="signout" onClick={() => props.onSignOut()}>
          Sign out
        </button>
      </header>
      <section class="controls">
        <FilterEditor query={query} error={queryError} onApply={apply} />
        <Chart samples={samples} now={now} />
      </section>
      <main>
        <table class="sessions" aria-label="Live sessions" aria-busy={loading}>
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Page</th>
              <th scope="col">OS / browser / device</th>
              <th scope="col">Country</th>
              <th scope="col">Metadata</th>
              <th scope="col">Tabs</th>
              <th scope="col">Live for</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <SessionRow key={r.session.sessionID} session={r.session} mark={r.mark} now={now} selected={r.session.sessionID === selected} onOpen={() => open(r.session.sessionID)} />
            ))}
          </tbody>
        </table>
        {!loading && rows.length === 0 && <p class="empty">No live session {query.filters.length ? 'matches these filters' : 'in this project'} right now.</p>}
      </main>
      {selectedSession && <SessionPanel session={selectedSession} query={query} gone={!drawn.current.has(selectedSession.sessionID)} onClose={closePanel} />}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------

function App() {
  const initial = useMemo(() => readQuery(location.search), []);
  const [signed, setSigned] = useState<Signed | undefined>();
  const [project, setProject] = useState(initial.project);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const signIn = async (token: string, projectKey: string) => {
    setBusy(true);
    setError('');
    try {
      const client = await connect(token, projectKey);
      sessionStorage.setItem(KEY_STORAGE, token);
      const current = readQuery(location.search);
      const query = projectKey === current.project ? current : defaultQuery(projectKey);
      history.replaceState(null, '', writeQuery(query));
      setProject(projectKey);
      setSigned({ client, token });
    } catch (err) {
      sessionStorage.removeItem(KEY_STORAGE);
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  // A reload in the same tab signs in again with the stored key.
  useEffect(() => {
    const stored = sessionStorage.getItem(KEY_STORAGE);
    if (stored && initial.project) void signIn(stored, initial.project);
  }, []);

  const signOut = (message?: string) => {
    signed?.client.close();
    sessionStorage.removeItem(KEY_STORAGE);
    setSigned(undefined);
    setError(message ?? '');
  };

  if (!signed) return <SignIn project={project} error={error} busy={busy} onSubmit={(k, p) => void signIn(k, p)} />;
  const query = readQuery(location.search);
  return <Console signed={signed} initial={{ ...query, project }} onSignOut={signOut} />;
}

render(<App />, document.getElementById('app') as HTMLElement);
