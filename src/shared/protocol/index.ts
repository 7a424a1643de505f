export * from './result';
export * from './model';
export * from './events';
export * from './agent-wire';
export * from './bridge';
export * from './channels';
export * from './replay';
