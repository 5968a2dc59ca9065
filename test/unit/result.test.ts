import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { answeredResult, parseOutput, publicHeaders, unansweredResult } from '../../src/result.js';

const ctx = { runId: 'r1', functionId: 'f1', version: 2, startedAt: performance.now(), coldStart: true };
const answer = (status: number, body: string, headers: Record<string, string> = {}) => ({ status, headers, body: Buffer.from(body) });

const result = suite('result');

result('output is JSON when the body is JSON, text otherwise, null when empty', () => {
	assert.equal(parseOutput(Buffer.from('{"a":[1,2]}')), { a: [1, 2] });
	assert.is(parseOutput(Buffer.from('42')), 42);
	assert.is(parseOutput(Buffer.from('hello')), 'hello');
	assert.is(parseOutput(Buffer.from('{"a":')), '{"a":');
	assert.is(parseOutput(Buffer.alloc(0)), null);
});

result('below 500 is success, 500 and up is failed with a reason', () => {
	const ok = answeredResult(ctx, answer(418, 'tea', { 'x-brew': 'green' }));
	assert.is(ok.status, 'success');
	assert.is(ok.http_status_code, 418);
	assert.is(ok.error_message, '');
	assert.is(ok.http_headers['x-brew'], 'green');
	const bad = answeredResult(ctx, answer(503, ''));
	assert.is(bad.status, 'failed');
	assert.match(bad.error_message, /503/);
	assert.is(bad.output, null);
});

result('drops hop-by-hop headers and the ones Connection names', () => {
	const headers = { connection: 'keep-alive, X-Secret-Hop', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', 'x-secret-hop': '1', 'x-kept': '2' };
	assert.equal(publicHeaders(headers), { 'x-kept': '2' });
});

result('repeated headers are joined into one string', () => {
	assert.equal(publicHeaders({ 'set-cookie': ['a=1', 'b=2'] }), { 'set-cookie': 'a=1, b=2' });
});

result('a result without an answer has no status, headers or output', () => {
	const r = unansweredResult(ctx, 'timeout', 'too slow');
	assert.equal({ ...r, duration_ms: 0 }, { run_id: 'r1', function_id: 'f1', version: 2, status: 'timeout', http_status_code: null, http_headers: {}, output: null, error_message: 'too slow', duration_ms: 0, cold_start: true });
});

result.run();
