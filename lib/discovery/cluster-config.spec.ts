import { describe, expect, it } from 'vitest';
import { parseClusterConfig, readConfigReply } from './cluster-config.js';
import type { ConfigCommand } from './cluster-config.js';

// Shaped as in AWS's ElastiCache guide ("Adding Auto Discovery to your Memcached client
// library", Output Format): a version line ended by LF, one line of host|ip|port entries
// separated by spaces ended by LF, framed like a memcached value and closed by END.
const NODE_1 = 'mycluster.abc123.0001.use1.cache.amazonaws.com|10.82.235.120|11211';
const NODE_2 = 'mycluster.abc123.0002.use1.cache.amazonaws.com|10.80.249.27|11211';
const DATA = `12\n${NODE_1} ${NODE_2}\n`;

function reply(command: ConfigCommand, data: string, length = Buffer.byteLength(data)): Buffer {
  const header =
    command === 'config'
      ? `CONFIG cluster 0 ${length}`
      : `VALUE AmazonElastiCache:cluster 0 ${length}`;
  return Buffer.from(`${header}\r\n${data}\r\nEND\r\n`);
}

const EXPECTED = {
  version: 12,
  nodes: [
    {
      host: 'mycluster.abc123.0001.use1.cache.amazonaws.com',
      address: '10.82.235.120',
      port: 11211,
    },
    {
      host: 'mycluster.abc123.0002.use1.cache.amazonaws.com',
      address: '10.80.249.27',
      port: 11211,
    },
  ],
};

describe('readConfigReply', () => {
  it.each(['config', 'get'] as const)('reads the documented reply to %s', (command) => {
    expect(readConfigReply(reply(command, DATA), command)).toEqual({
      state: 'complete',
      config: EXPECTED,
    });
  });

  it("reads a Memorystore discovery endpoint's reply: each node named by its IP", () => {
    // Shaped as in Google's "Use the Auto Discovery service" (Memorystore for Memcached): the
    // same framing, a version, then node-ip|node-ip|node-port entries separated by spaces.
    const data = '9\n10.128.0.3|10.128.0.3|11211 10.128.0.4|10.128.0.4|11211\n';
    expect(readConfigReply(reply('config', data), 'config')).toEqual({
      state: 'complete',
      config: {
        version: 9,
        nodes: [
          { host: '10.128.0.3', address: '10.128.0.3', port: 11211 },
          { host: '10.128.0.4', address: '10.128.0.4', port: 11211 },
        ],
      },
    });
  });

  it('is partial at every cut before the last byte, complete at the last', () => {
    const whole = reply('config', DATA);
    for (let cut = 0; cut < whole.length; cut++) {
      expect(readConfigReply(whole.subarray(0, cut), 'config')).toEqual({ state: 'partial' });
    }
    expect(readConfigReply(whole, 'config').state).toBe('complete');
  });

  it('tells an unknown command (ERROR) apart, so the older command can be tried', () => {
    expect(readConfigReply(Buffer.from('ERROR\r\n'), 'config')).toEqual({
      state: 'unknown-command',
    });
  });

  it.each([
    ['an empty get (a plain memcached)', Buffer.from('END\r\n'), /no configuration/],
    ['a server error', Buffer.from('SERVER_ERROR out of memory\r\n'), /unexpected first line/],
    ["the other command's header", reply('get', DATA), /unexpected first line "VALUE/],
    ['a byte count too small', reply('config', DATA, 20), /not followed by \\r\\nEND/],
    [
      'no END after the data',
      Buffer.from(`CONFIG cluster 0 ${DATA.length}\r\n${DATA}\r\nEXTRA\r\n`),
      /not followed/,
    ],
    ['a first line that never ends', Buffer.alloc(300, 'x'), /more than 256 bytes/],
  ])('refuses %s', (_, bytes, reason) => {
    const state = readConfigReply(bytes, 'config');
    expect(state.state).toBe('invalid');
    expect(state.state === 'invalid' && state.reason).toMatch(reason);
  });
});

describe('parseClusterConfig', () => {
  it('reads a node without an IP (host||port): connected by host name', () => {
    expect(parseClusterConfig('3\nnode-a.example||11212 node-b.example|10.0.0.2|11211\n')).toEqual({
      version: 3,
      nodes: [
        { host: 'node-a.example', port: 11212 },
        { host: 'node-b.example', address: '10.0.0.2', port: 11211 },
      ],
    });
  });

  it('reads IPv6 addresses and lower-cases host names', () => {
    expect(parseClusterConfig('1\nNode-A.Example|fd00::5|11211\n')).toEqual({
      version: 1,
      nodes: [{ host: 'node-a.example', address: 'fd00::5', port: 11211 }],
    });
  });

  it('reads an empty node list as such (the source refuses to apply it)', () => {
    expect(parseClusterConfig('4\n\n')).toEqual({ version: 4, nodes: [] });
  });

  it.each([
    ['no trailing LF', `12\n${NODE_1}`, /1 data lines where the format has 2/],
    ['a third line', `12\n${NODE_1}\nmore\n`, /3 data lines/],
    ['CRLF line ends', `12\r\n${NODE_1}\r\n`, /version "12\\r" is not a whole number/],
    ['a version that is not a number', `v12\n${NODE_1}\n`, /version "v12"/],
    ['a negative version', `-1\n${NODE_1}\n`, /version "-1"/],
    ['two fields', '1\nhost|11211\n', /is not host\|ip\|port/],
    ['four fields', '1\nhost|10.0.0.1|11211|x\n', /is not host\|ip\|port/],
    ['a bad IP', '1\nhost|10.0.0.300|11211\n', /invalid IP address/],
    ['port 0', '1\nhost|10.0.0.1|0\n', /invalid port/],
    ['port 70000', '1\nhost|10.0.0.1|70000\n', /invalid port/],
    ['a host with a space-less injection', '1\nho\rst|10.0.0.1|11211\n', /no valid host name/],
    ['two spaces between nodes', `1\n${NODE_1}  ${NODE_2}\n`, /"" is not host\|ip\|port/],
    ['an empty host', '1\n|10.0.0.1|11211\n', /no valid host name/],
  ])('refuses %s', (_, data, reason) => {
    expect(parseClusterConfig(data)).toMatch(reason);
  });
});
