'use strict';
// trek-audit for Node.js: record audit events through trek-audit (client.js), and take the
// client's IP under the TRUST_PROXY rule (client-ip.js).

const { AuditError, createAuditClient } = require('./client.js');
const { auditContext, clientIp, parseTrustProxy } = require('./client-ip.js');

exports.AuditError = AuditError;
exports.createAuditClient = createAuditClient;
exports.clientIp = clientIp;
exports.auditContext = auditContext;
exports.parseTrustProxy = parseTrustProxy;
