// Resolves test/helpers.js's require('..') to the dynalite package from the npm registry (only used outside REMOTE mode)
module.exports = require('dynalite')
