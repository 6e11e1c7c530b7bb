// doctor's kind entries: the Go-built tools and pause (provision.ts), the runc wrapper, and the offline node image
// (node-image.ts), one ok/MISS line each. With everything present the check spawns nothing.
import type { Check } from '../../cli/doctor.ts';
import type { Log } from '../../controlplane/provision.ts';
import { UserError } from '../../model/errors.ts';
import { startEngine } from '../docker/engine.ts';
import { checkNodeImage, ensureNodeImage, kubeadmImagesList } from './node-image.ts';
import { KIND_FIX, checkKindTools, checkRuncWrapper, kindBinary, provisionKindTools } from './provision.ts';
import { diffImages, parseImagesList } from './versions.ts';

export async function checkKind(): Promise<Check[]> {
  return [...checkKindTools(), checkRuncWrapper(), await checkNodeImage()];
}

/** kubeadm's own list must be the table's: an image the table does not build would be pulled, which cannot work here. */
async function checkKubeadmImages(log: Log): Promise<void> {
  const listed = parseImagesList(await kubeadmImagesList(kindBinary('kubeadm').path));
  const { unbuilt, extra } = diffImages(listed);
  if (unbuilt.length || extra.length) {
    throw new UserError(`kubeadm config images list names ${unbuilt.join(', ') || 'nothing new'}${extra.length ? `, not ${extra.join(', ')}` : ''}: update KUBEADM_IMAGES in src/harness/substrate/kind/versions.ts, then run ${KIND_FIX}`);
  }
  log(`     kubeadm config images list: ${listed.length} images, all built offline`);
}

/** Builds what is missing: the Go tools first (the node image carries them), then the node image in meshproof's engine. */
export async function provisionKind(log: Log): Promise<void> {
  const tools = await provisionKindTools(log);
  if (tools.built.length) log(`     kind tools: built ${tools.built.join(', ')} in ${tools.seconds.toFixed(0)} s`);
  const image = await checkNodeImage();
  if (image.ok) return;
  await checkKubeadmImages(log);
  // meshproof's own dockerd in its private network namespace (never one in the host namespace), stopped after
  const engine = await startEngine({ log: (l) => log(`     ${l}`) });
  try {
    const r = await ensureNodeImage(engine, log);
    log(`     ${r.status === 'hit' ? 'cached' : 'built '} ${r.tag} in ${r.seconds.toFixed(1)} s`);
  } finally {
    await engine.stop();
  }
}
