// Connection strings end up in error messages and config dumps; the password never does.

export const redactUrl = function (value: string): string {

    return value.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/\s]*@/gi, '$1***@');
};
