/** What replaces a password in anything the commands print. */
export const MASK = '***';

// `scheme://user:password@host`: keep the user (it helps) and hide the password, up to the last
// `@` of the authority, since a password written unencoded may itself contain `@`, `:` or `/`.
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):\S*?@(?=[^\s@/]*(?:[/?#\s]|$))/gi;

/**
 * A secret shorter than this is not searched for in free text: masking `x` or `pass` wherever
 * it occurs garbles messages and, by where the mask lands, tells the password. (URL passwords
 * are masked whatever their length.)
 */
export const MIN_MASKED_SECRET_LENGTH = 6;

/**
 * The passwords found in TypeORM data source options: `password`, the one inside `url`, and
 * those of replication members and `extra`, so that messages can be scrubbed of them. A
 * password equal to a user name is left out: the user name is printed on purpose (in "access
 * denied for user …"), and masking it there would tell that the two are the same.
 */
export function secretsOf(options: object): string[] {
  const secrets = new Set<string>();
  const users = new Set<string>();
  const visit = (value: unknown, depth: number): void => {
    if (!value || typeof value !== 'object' || depth > 3) return;
    for (const [key, field] of Object.entries(value)) {
      if (typeof field === 'string' && field && /password|passwd|secret/i.test(key)) {
        secrets.add(field);
      } else if (typeof field === 'string' && field && /^(user|username)$/i.test(key)) {
        users.add(field);
      } else if (typeof field === 'string' && key === 'url') {
        const credentials = urlCredentials(field);
        if (credentials?.password) secrets.add(credentials.password);
        if (credentials?.username) users.add(credentials.username);
      } else if (typeof field === 'object') {
        visit(field, depth + 1);
      }
    }
  };
  visit(options, 0);
  return [...secrets].filter((secret) => !users.has(secret));
}

/**
 * Hide credentials in `text`: the password part of every URL, and every occurrence (plain or
 * URL-encoded) of the given secrets as a whole token, wherever a driver put them. Secrets
 * shorter than {@link MIN_MASKED_SECRET_LENGTH} are left to the URL rule alone.
 */
export function maskCredentials(text: string, secrets: readonly string[] = []): string {
  let masked = text.replace(URL_PASSWORD, `$1:${MASK}@`);
  for (const secret of secrets) {
    if (secret.length < MIN_MASKED_SECRET_LENGTH) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      masked = masked.replace(wholeToken(form), MASK);
    }
  }
  return masked;
}

/** `text` where it is not part of a longer word (an edge that is a word character is checked). */
function wholeToken(text: string): RegExp {
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const word = /[\p{L}\p{N}_]/u;
  const before = word.test(text[0]) ? '(?<![\\p{L}\\p{N}_])' : '';
  const after = word.test(text.at(-1)!) ? '(?![\\p{L}\\p{N}_])' : '';
  return new RegExp(`${before}${escaped}${after}`, 'gu');
}

function urlCredentials(url: string): { username: string; password: string } | undefined {
  try {
    const parsed = new URL(url);
    return {
      username: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
    };
  } catch {
    return undefined;
  }
}
