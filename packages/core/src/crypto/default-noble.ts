// Selected through the '#crypto-default' import condition 'noble' (package.json "imports").
export const defaultProviderName = 'noble';
