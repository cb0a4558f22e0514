// Selected through the '#crypto-default' import condition 'web' (package.json "imports").
export const defaultProviderName = 'web';
