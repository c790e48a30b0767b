/** What replaces a password in anything the commands print. */
export const MASK = '***';

// `scheme://user:password@host`: keep the user (it helps) and hide the password, up to the last
// `@` of the authority, since a password written unencoded may itself contain `@`, `:` or `/`.
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):\S*?@(?=[^\s@/]*(?:[/?#\s]|$))/gi;

/**
 * The passwords found in TypeORM data source options: `password`, the one inside `url`, and
 * those of replication members and `extra`, so that messages can be scrubbed of them.
 */
export function secretsOf(options: object): string[] {
  const secrets = new Set<string>();
  const visit = (value: unknown, depth: number): void => {
    if (!value || typeof value !== 'object' || depth > 3) return;
    for (const [key, field] of Object.entries(value)) {
      if (typeof field === 'string' && field && /password|passwd|secret/i.test(key)) {
        secrets.add(field);
      } else if (typeof field === 'string' && key === 'url') {
        const password = urlPassword(field);
        if (password) secrets.add(password);
      } else if (typeof field === 'object') {
        visit(field, depth + 1);
      }
    }
  };
  visit(options, 0);
  return [...secrets];
}

/**
 * Hide credentials in `text`: the password part of every URL, and every literal occurrence
 * (plain or URL-encoded) of the given secrets, wherever a driver put them.
 */
export function maskCredentials(text: string, secrets: readonly string[] = []): string {
  let masked = text.replace(URL_PASSWORD, `$1:${MASK}@`);
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      masked = masked.split(form).join(MASK);
    }
  }
  return masked;
}

function urlPassword(url: string): string | undefined {
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}
