export { Storage, type PersistRequest, type StorageOpened, type StorageOptions, type StorageRecoveryReport, type StorageStats } from './storage';
export { WriteAheadLog, RecoveryScan, walLimitsDefault, type SealedSegmentInfo, type WalObserver, type WalLimits, type WalOpened, type WalOptions, type WalRecoveryReport, type WalStats } from './wal';
export { describeIssue, type StorageIssue, type StorageIssueKind } from './codec';
export { issueCode, type StorageErr, type StorageResult } from './result';
export { DurationRing, type FsyncStats } from './disk';
