/** Credentials found for one registry, and where they came from (shown in errors, never the secret). */
export interface ResolvedCredentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (auth file `identitytoken`, or a helper returning user `<token>`). */
  identityToken?: string;
  /** Where they came from, e.g. '--creds', '~/.docker/config.json', 'docker-credential-pass'; 'none' if anonymous. */
  source: string;
}
