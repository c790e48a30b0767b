/**
 * `error.type` of a failed command, low-cardinality as the conventions ask: Node's error code
 * (`ECONNREFUSED`, `ETIMEDOUT`), `timeout` for memcache-client's command timeouts, memcached's
 * own error reply (`SERVER_ERROR`, `CLIENT_ERROR`, `NOT_STORED`), else the error's class name.
 */
export function errorType(error: unknown): string {
  if (error === null || typeof error !== 'object') return '_OTHER';
  const { code, message, name } = error as { code?: unknown; message?: unknown; name?: unknown };
  if (typeof code === 'string' && code !== '') return code;
  const text = typeof message === 'string' ? message : '';
  const reply = /^(SERVER_ERROR|CLIENT_ERROR|ERROR|NOT_STORED|NOT_FOUND|EXISTS)\b/.exec(text);
  if (reply !== null) return reply[1];
  if (/timed? ?out/i.test(text)) return 'timeout';
  return typeof name === 'string' && name !== '' ? name : '_OTHER';
}
