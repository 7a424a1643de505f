export * from './command';
export * from './state-machine';
