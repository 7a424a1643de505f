export * from './types';
export * from './config';
export * from './derive';
export * from './alerts';
export * from './reducer';
export * from './summary';
export * from './preflight';
