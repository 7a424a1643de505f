export * from './history';
export * from './checker';
export * from './kv-model';
