// recovery_helpers conformance harness (not part of dynalite): loaded with `mocha --require ./isolate.js`.
//
// Several dynalite tests send many requests at once and assert in each answer's callback. When the first
// assertion fails, mocha fails the test and moves on; the other answers still arrive and their assertions throw
// while the NEXT test runs, failing it too (or crashing mocha between tests). This shim tags every HTTP answer
// with the test that sent the request and drops what it throws once that test is over: a test is judged only
// by its own requests. Assertions themselves are untouched.
var http = require('http')

var current = 0
var request = http.request

http.request = function (opts, cb) {
  var owner = current
  if (typeof cb != 'function') return request.apply(this, arguments)
  return request.call(this, opts, function (res) {
    var on = res.on
    res.on = function (event, listener) {
      return on.call(this, event, function () {
        try {
          return listener.apply(this, arguments)
        }
        catch (err) {
          if (owner === current) throw err
        }
      })
    }
    return cb(res)
  })
}

exports.mochaHooks = {
  beforeEach: function () { current++ },
  afterEach: function () { current++ },
}
