#!/usr/bin/env node
// unplug's willy driver for mqtt.js (the seed's client). The line protocol is in README.md,
// "willy drivers": one JSON command per line on stdin (connect, publish, disconnect, quit),
// one JSON report per line on stdout, each with `ms` (this process's monotonic clock) and
// `says` (mqtt.js's own words). The harness runs the cycles; this program only does what it is
// told and reports what mqtt.js says. mqtt.js's own reconnects are off (reconnectPeriod 0):
// the harness reconnects, as the seed's willy did, on its own schedule.
'use strict'
const path = require('path')
const readline = require('readline')

const modules = process.env.UNPLUG_MQTTJS_MODULES
let mqtt, version
try {
  const where = modules ? path.join(modules, 'mqtt') : 'mqtt'
  mqtt = require(where)
  version = require(path.join(where, 'package.json')).version
} catch (e) {
  process.stderr.write(`the npm package mqtt is not installed (${e.message}): run scripts/drivers.sh\n`)
  process.exit(2)
}

const t0 = process.hrtime.bigint()
const ms = () => Number(process.hrtime.bigint() - t0) / 1e6
const report = (kind, fields) => {
  process.stdout.write(JSON.stringify({ report: kind, ms: ms(), ...fields }) + '\n')
}
const words = (e) => (e && (e.code ? `${e.code}: ${e.message}` : e.message || String(e))) || ''

let client = null
let attempt = 0

function connect (c) {
  if (client) client.end(true)
  attempt += 1
  const mine = attempt
  let connected = false
  let failed = false
  let ending = false
  const fail = (says) => {
    if (failed || mine !== attempt) return
    failed = true
    report(connected ? 'disconnected' : 'connection_failed', { says })
  }
  const opts = {
    clientId: c.client_id,
    keepalive: c.keepalive_s,
    clean: c.clean,
    connectTimeout: c.connect_timeout_ms,
    reconnectPeriod: 0,
    protocolVersion: 4
  }
  if (c.username != null) opts.username = c.username
  if (c.password != null) opts.password = c.password
  if (c.will) {
    opts.will = { topic: c.will.topic, payload: c.will.payload, qos: c.will.qos, retain: c.will.retain }
  }
  if (c.tls) {
    // mqtts:// and wss://: the CA to trust (none: Node's own roots) and the name the server's
    // certificate must carry, whatever address the URL has. mqtt.js hands ca and
    // rejectUnauthorized to ws for wss://, but not servername: that goes in wsOptions.
    if (c.tls.ca_pem != null) opts.ca = c.tls.ca_pem
    opts.rejectUnauthorized = !c.tls.insecure
    opts.servername = c.tls.servername
    opts.wsOptions = { servername: c.tls.servername }
  }
  const cl = mqtt.connect(c.url, opts)
  client = cl
  cl.unplugEnding = () => { ending = true }
  cl.on('connect', (connack) => {
    connected = true
    report('connected', { session_present: !!connack.sessionPresent, says: `connack (session present ${!!connack.sessionPresent}, return code ${connack.returnCode})` })
  })
  cl.on('error', (e) => fail(`error: ${words(e)}`))
  cl.on('close', () => {
    if (ending) {
      report('closed', { says: 'close (after end)' })
      return
    }
    fail('close')
  })
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  let c
  try {
    c = JSON.parse(line)
  } catch (e) {
    report('bad_command', { says: `not JSON: ${e.message}` })
    return
  }
  switch (c.cmd) {
    case 'connect':
      connect(c)
      break
    case 'publish': {
      const cl = client
      if (!cl) return report('bad_command', { says: 'publish before connect' })
      cl.publish(c.topic, c.payload, { qos: c.qos || 0, retain: !!c.retain }, (e) => {
        if (e) report('publish_failed', { topic: c.topic, says: words(e) })
        else report('published', { topic: c.topic, says: `${c.payload} was published` })
      })
      break
    }
    case 'disconnect': {
      const cl = client
      if (!cl) return report('bad_command', { says: 'disconnect before connect' })
      cl.unplugEnding()
      cl.end(false, (e) => report('disconnect_returned', { says: e ? `end: ${words(e)}` : 'end callback' }))
      break
    }
    case 'quit':
      if (client) client.end(true)
      process.exit(0)
      break
    default:
      report('bad_command', { says: `unknown command ${JSON.stringify(c.cmd)}` })
  }
})
rl.on('close', () => process.exit(0))
report('ready', { says: `mqtt.js ${version} on node ${process.version}` })
