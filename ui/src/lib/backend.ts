// The one place that talks to the Rust side. Every call returns data or throws a
// `BackendError` carrying the stable `{code, message, details}` the UI translates.
import { invoke } from '@tauri-apps/api/core';

export interface BackendError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface SpecimenView {
  code: string;
  sample_type: string;
  material: string;
  status: string;
  blocked: boolean;
  in_conflict: boolean;
  container: string | null;
  position: string | null;
  path: string | null;
  holder: string | null;
  due: string | null;
  study: string;
  donor: string;
  freeze_thaw: number;
  registered_at: number;
}

export interface Placed {
  specimen: string;
  container: string;
  row: number;
  col: number;
  position: string;
}

export interface Transport {
  call<T>(command: string, args?: Record<string, unknown>): Promise<T>;
}

/** The Tauri transport; tests pass their own. */
export const tauri: Transport = {
  call: <T>(command: string, args?: Record<string, unknown>) => invoke<T>(command, args),
};

function asError(e: unknown): BackendError {
  if (e && typeof e === 'object' && 'code' in e) return e as BackendError;
  return { code: 'ipc_error', message: String(e) };
}

export function backend(t: Transport = tauri) {
  const call = async <T>(command: string, args?: Record<string, unknown>): Promise<T> => {
    try {
      return await t.call<T>(command, args);
    } catch (e) {
      throw asError(e);
    }
  };
  return {
    show: (scan: string) => call<SpecimenView>('show', { scan }),
    checkIn: (specimen: string, container: string, position?: string) =>
      call<Placed>('check_in', { specimen, container, position: position ?? null }),
    boxMap: (container: string) => call<unknown>('box_map', { container }),
    stats: () => call<unknown>('stats'),
  };
}
