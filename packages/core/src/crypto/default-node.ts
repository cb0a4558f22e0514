// Selected through the '#crypto-default' import condition 'node' (package.json "imports").
export const defaultProviderName = 'node';
