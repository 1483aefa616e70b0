/** A Server-Sent Events message: its `event:` name and its `data:` lines parsed as JSON. */
export interface SseEvent {
  event: string;
  data: any;
}

/**
 * The whole messages at the start of `buffer` (each ends with a blank line), and what is left of it.
 * Comment lines (`:`, graphql-yoga's keep-alive pings) are skipped; data that is not JSON is kept as
 * `{ unparsable: text }`.
 */
export function takeSseEvents(buffer: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  let rest = buffer;
  let end: number;
  while ((end = rest.indexOf('\n\n')) >= 0) {
    const lines = rest
      .slice(0, end)
      .split('\n')
      .filter((line) => !line.startsWith(':'));
    rest = rest.slice(end + 2);
    if (!lines.length) continue;
    const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim() ?? 'message';
    const data = lines
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trim())
      .join('\n');
    let parsed: unknown = null;
    try {
      parsed = data ? JSON.parse(data) : null;
    } catch {
      parsed = { unparsable: data };
    }
    events.push({ event, data: parsed });
  }
  return { events, rest };
}
