// Resolves test/batchWriteItem.js's require('../db') (db.itemSize) to the dynalite package from the npm registry
module.exports = require('dynalite/db')
