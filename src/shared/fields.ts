// The request fields every part of the contract shares. They live apart from contract.ts because
// contract.ts imports the parts (layers, backup, ssh, ...), so those cannot import its fields back.
import { z } from 'zod';

export const hostId = z.string({ error: 'hostId must be a string' }).min(1, 'hostId must not be empty').max(200);

// libvirt allows nearly anything in a domain name except '/', which it forbids.
export const domainName = z
  .string({ error: 'domain must be a string: the domain name' })
  .min(1, 'domain must not be empty')
  .max(255, 'domain names are at most 255 characters')
  .refine((s) => !s.includes('/') && !/[\u0000-\u001f]/.test(s), 'domain names cannot contain "/" or control characters');

export const diskTarget = z
  .string({ error: "disk must be a string: the disk's target, such as 'vda'" })
  .regex(/^[a-z]{1,8}[a-z0-9]{0,8}$/, "disk must be a target name such as 'vda' or 'sdb'");
