#!/usr/bin/env node
// Start the aedes MQTT broker (npm `aedes`, pinned in scripts/third-party-brokers.sh) in the foreground on 127.0.0.1.
//
// Installs nothing: it loads aedes and ws from the npm prefix given by --prefix
// (default /tmp/unplug-aedes), where scripts/third-party-brokers.sh put them.
//
//   node scripts/independent/start-aedes.js --port 18850 [--ws-port 18851 --ws-path /mqtt] [--prefix DIR]
//
// Login: when BROKER_USERNAME and BROKER_PASSWORD are both set in the environment,
// a CONNECT without that exact login is refused (CONNACK return code 4 for a wrong
// or missing user/password); otherwise anonymous clients are allowed. The password
// is never printed. WebSocket: only the given path, subprotocol "mqtt".
// Stops on SIGINT/SIGTERM.
'use strict'

const path = require('node:path')
const net = require('node:net')
const http = require('node:http')
const { createRequire } = require('node:module')

function parseArgs (argv) {
  const out = { port: 18850, wsPort: 0, wsPath: '/mqtt', prefix: '/tmp/unplug-aedes' }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const v = argv[i + 1]
    if (a === '--port') { out.port = Number(v); i++ } else if (a === '--ws-port') { out.wsPort = Number(v); i++ } else if (a === '--ws-path') { out.wsPath = v; i++ } else if (a === '--prefix') { out.prefix = v; i++ } else {
      console.error('start-aedes.js: unknown argument ' + a)
      process.exit(2)
    }
  }
  return out
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  const req = createRequire(path.join(path.resolve(args.prefix), 'node_modules', 'noop.js'))
  let Aedes, WebSocketServer, createWebSocketStream
  try {
    ({ Aedes } = req('aedes'));
    ({ WebSocketServer, createWebSocketStream } = req('ws'))
  } catch (e) {
    console.error('start-aedes.js: aedes/ws not found under ' + args.prefix + ' (scripts/third-party-brokers.sh installs it): ' + e.message)
    process.exit(2)
  }
  const broker = await Aedes.createBroker()
  const user = process.env.BROKER_USERNAME
  const pass = process.env.BROKER_PASSWORD
  const login = !!(user && pass)
  if (login) {
    broker.authenticate = function (client, username, password, callback) {
      const ok = username === user && password !== undefined && password !== null && password.toString() === pass
      if (ok) return callback(null, true)
      const err = new Error('bad login')
      err.returnCode = 4
      callback(err, null)
    }
  }
  const servers = []
  const tcp = net.createServer(broker.handle)
  servers.push(tcp)
  await new Promise((resolve, reject) => { tcp.once('error', reject); tcp.listen(args.port, '127.0.0.1', resolve) })
  let wsNote = ''
  if (args.wsPort) {
    const httpServer = http.createServer((q, s) => { s.writeHead(404); s.end() })
    const wss = new WebSocketServer({
      server: httpServer,
      path: args.wsPath,
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false)
    })
    wss.on('connection', (ws, request) => { broker.handle(createWebSocketStream(ws), request) })
    servers.push(httpServer)
    await new Promise((resolve, reject) => { httpServer.once('error', reject); httpServer.listen(args.wsPort, '127.0.0.1', resolve) })
    wsNote = ', 127.0.0.1:' + args.wsPort + args.wsPath + ' (ws)'
  }
  let version = '?'
  try { version = JSON.parse(require('node:fs').readFileSync(path.join(path.resolve(args.prefix), 'node_modules', 'aedes', 'package.json'))).version } catch (e) {}
  console.log('aedes ' + version + ' listening on 127.0.0.1:' + args.port + ' (tcp)' + wsNote +
    (login ? ', login required' : ', anonymous'))
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    for (const s of servers) s.close()
    broker.close(() => process.exit(0))
    setTimeout(() => process.exit(0), 3000).unref()
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

main().catch((e) => { console.error('start-aedes.js: ' + (e && e.message)); process.exit(2) })
