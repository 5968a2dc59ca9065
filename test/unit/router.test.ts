import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiError } from '../../src/errors.js';
import { createRouter, splitPath } from '../../src/router.js';

const routes = () => {
	const r = createRouter<string>();
	r.add('GET', '/functions', 'list');
	r.add('POST', '/functions', 'create');
	r.add('GET', '/functions/:name', 'get');
	r.add('DELETE', '/functions/:name', 'delete');
	r.add('POST', '/functions/:name/invoke', 'invoke');
	return r;
};

const match = suite('router.match');

match('finds a static route by method', () => {
	assert.equal(routes().match('GET', '/functions'), { kind: 'found', handler: 'list', params: {}, rest: '' });
	assert.equal(routes().match('POST', '/functions'), { kind: 'found', handler: 'create', params: {}, rest: '' });
});

match('captures and decodes parameters', () => {
	assert.equal(routes().match('POST', '/functions/gr%65et/invoke'), { kind: 'found', handler: 'invoke', params: { name: 'greet' }, rest: '' });
});

match('tolerates one trailing slash', () => {
	assert.equal(routes().match('GET', '/functions/'), { kind: 'found', handler: 'list', params: {}, rest: '' });
});

match('tells a wrong method (405 with Allow) from an unknown path (404)', () => {
	assert.equal(routes().match('PUT', '/functions/x'), { kind: 'method_not_allowed', allow: ['DELETE', 'GET'] });
	assert.equal(routes().match('GET', '/functions/x/invoke'), { kind: 'method_not_allowed', allow: ['POST'] });
	assert.equal(routes().match('GET', '/nope'), { kind: 'not_found' });
	assert.equal(routes().match('GET', '/functions/x/invoke/more'), { kind: 'not_found' });
});

match('an encoded slash stays inside its segment', () => {
	assert.equal(routes().match('GET', '/functions/a%2Fb'), { kind: 'found', handler: 'get', params: { name: 'a/b' }, rest: '' });
});

match.run();

const split = suite('router.splitPath');

split('rejects malformed percent-encoding with a 400', () => {
	try {
		splitPath('/functions/%E0%A4%A');
		assert.unreachable('should throw');
	} catch (err) {
		assert.instance(err, ApiError);
		assert.is((err as ApiError).status, 400);
	}
});

split('keeps empty inner segments so they cannot match a parameter by accident', () => {
	assert.equal(splitPath('/functions//invoke'), ['functions', '', 'invoke']);
});

split.run();

const wildcard = suite('router wildcard');

wildcard('a trailing /* takes any remainder, raw, and any method with *', () => {
	const r = createRouter<string>();
	r.add('*', '/fn/:name/*', 'raw');
	assert.equal(r.match('PATCH', '/fn/echo'), { kind: 'found', handler: 'raw', params: { name: 'echo' }, rest: '' });
	assert.equal(r.match('GET', '/fn/echo/'), { kind: 'found', handler: 'raw', params: { name: 'echo' }, rest: '/' });
	assert.equal(r.match('DELETE', '/fn/echo/a%2Fb/c'), { kind: 'found', handler: 'raw', params: { name: 'echo' }, rest: '/a%2Fb/c' });
	assert.equal(r.match('GET', '/fn'), { kind: 'not_found' });
});

wildcard.run();
