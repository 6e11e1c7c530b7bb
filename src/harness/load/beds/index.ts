// The beds the budget run can start. A profile's paths are measured once its bed is listed
// here; catalog paths without a bed are reported as skipped ("no load bed for this profile yet").
import type { LoadBed } from '../path.ts';
import { c2cBed } from './c2c.ts';
import { cfBed } from './cf.ts';
import { istioBed } from './istio.ts';

export const LOAD_BEDS: readonly LoadBed[] = [istioBed, cfBed, c2cBed];
