// The demo's stand-in for CoreDNS: a DNS server on loopback (UDP, and TCP on the same port for
// truncated answers) whose A and SRV records the demo changes as members come and go, the way
// a headless Service's records follow its ready pods. A name without records answers NXDOMAIN.
import { Packet, TCPServer, UDPServer } from 'dns2';

const RCODE_NXDOMAIN = 3;

const key = (name) => name.toLowerCase().replace(/\.$/, '');

/**
 * Start the server on a free port of `host`.
 * @returns {Promise<{ address: string, setA(name: string, addresses: string[]): void,
 *   setSrv(name: string, records: Array<{ target: string, port: number }>): void,
 *   close(): Promise<void> }>}
 */
export async function startDnsServer(host = '127.0.0.1') {
  const a = new Map();
  const srv = new Map();

  const handle = (request, send) => {
    const [question] = request.questions;
    if (!question) return;
    const name = key(question.name);
    const response = Packet.createResponseFromRequest(request);
    response.header.aa = 1;
    if (!a.has(name) && !srv.has(name)) response.header.rcode = RCODE_NXDOMAIN;
    // TTL 0: the app sees each change at its next refresh (CoreDNS would cache up to 30 s).
    const answer = (record) =>
      response.answers.push(
        Packet.createResourceFromQuestion(question, { class: Packet.CLASS.IN, ttl: 0, ...record }),
      );
    if (question.type === Packet.TYPE.A)
      for (const address of a.get(name) ?? []) answer({ address });
    if (question.type === Packet.TYPE.SRV) {
      for (const { target, port } of srv.get(name) ?? []) {
        answer({ priority: 0, weight: 10, port, target });
      }
    }
    // The resolver may have given up on this query already: nothing to do about a failed send.
    // (dns2's UDP send returns a promise, its TCP send nothing.)
    void Promise.resolve(send(response)).catch(() => undefined);
  };

  // Resolvers switch to TCP for truncated answers, on the same port: take one free for both (the
  // port the OS gives for UDP may be taken for TCP), a bounded number of tries.
  let udp;
  let tcp;
  let port;
  let tcpListening = false;
  const sockets = new Set();
  for (let attempt = 0; attempt < 20 && !tcpListening; attempt++) {
    if (udp) await new Promise((resolve) => udp.close(resolve));
    udp = new UDPServer({ type: 'udp4' });
    udp.on('request', handle);
    await new Promise((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, host, resolve);
    });
    port = udp.address().port;
    tcp = new TCPServer();
    tcp.on('request', handle);
    tcp.on('connection', (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    tcpListening = await new Promise((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
  }

  return {
    address: `${host}:${port}`,
    setA: (name, addresses) => a.set(key(name), [...addresses]),
    setSrv: (name, records) =>
      srv.set(
        key(name),
        records.map((r) => ({ ...r })),
      ),
    close: () =>
      Promise.all([
        new Promise((resolve) => udp.close(resolve)),
        tcpListening
          ? new Promise((resolve) => {
              tcp.close(resolve);
              for (const socket of sockets) socket.destroy();
            })
          : undefined,
      ]).then(() => undefined),
  };
}
