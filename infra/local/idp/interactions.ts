/**
 * The interaction routes oidc-provider sends the browser to during the authorization-code
 * flow (its built-in devInteractions accept any login name, so they are off):
 *
 *   GET  /interaction/:uid          login form, or (consent prompt) automatic consent
 *   POST /interaction/:uid/login    email + password form; blocked users are refused
 *   POST /interaction/:uid/abort    ends the flow with access_denied
 *
 * Consent is granted without asking: every client here is first-party, as Auth0 treats the
 * SPA of an API it owns. No CSRF token is needed: the interaction cookie is SameSite=Lax, so
 * a cross-site form post arrives without it and fails.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { Interaction } from 'oidc-provider';
import { pathSegments, readBody, sendHtml } from './http.js';
import { loginPage } from './pages.js';
import { INTERACTION_PREFIX } from './provider-config.js';
import type { UserStore } from './user-store.js';

export async function handleInteraction(provider: Provider, users: UserStore, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const [uid, action, ...rest] = pathSegments(path.slice(INTERACTION_PREFIX.length)) ?? [];
  if (!uid || rest.length > 0) return sendHtml(res, 404, 'Not found');

  let details: Interaction;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    return sendHtml(res, 400, 'This sign-in has expired or its cookie is missing. Start again from the application.');
  }
  if (details.uid !== uid) return sendHtml(res, 400, 'Interaction mismatch. Start again from the application.');

  if (action === undefined && req.method === 'GET') {
    if (details.prompt.name === 'login') return sendHtml(res, 200, loginPage({ uid, clientName: await clientName(provider, details) }));
    if (details.prompt.name === 'consent') return consent(provider, req, res, details);
    return sendHtml(res, 501, `Prompt ${details.prompt.name} is not supported here.`);
  }
  if (action === 'login' && req.method === 'POST') return login(provider, users, req, res, details);
  if (action === 'abort' && req.method === 'POST') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
  }
  return sendHtml(res, 405, 'Method not allowed');
}

async function clientName(provider: Provider, details: Interaction): Promise<string> {
  const id = details.params['client_id'];
  const client = typeof id === 'string' ? await provider.Client.find(id) : undefined;
  const name = client?.['clientName'];
  return typeof name === 'string' ? name : String(id);
}

async function login(provider: Provider, users: UserStore, req: IncomingMessage, res: ServerResponse, details: Interaction): Promise<void> {
  if (details.prompt.name !== 'login') return sendHtml(res, 400, 'No sign-in is pending for this interaction.');
  const form = new URLSearchParams(await readBody(req));
  const email = form.get('email') ?? '';
  const user = users.authenticate(email, form.get('password') ?? '');
  const name = await clientName(provider, details);
  if (!user) return sendHtml(res, 401, loginPage({ uid: details.uid, clientName: name, email, error: 'Wrong email or password.' }));
  if (user.blocked) return sendHtml(res, 403, loginPage({ uid: details.uid, clientName: name, email, error: 'This user is blocked.' }));
  await provider.interactionFinished(req, res, { login: { accountId: user.userId } }, { mergeWithLastSubmission: false });
}

async function consent(provider: Provider, req: IncomingMessage, res: ServerResponse, details: Interaction): Promise<void> {
  const accountId = details.session?.accountId;
  const clientId = details.params['client_id'];
  if (!accountId || typeof clientId !== 'string') return sendHtml(res, 400, 'No signed-in user for this interaction.');
  const grant = (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ?? new provider.Grant({ accountId, clientId });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}
