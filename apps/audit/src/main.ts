import { runServiceMain } from '@soma/service-runtime';
import { auditService } from './audit.service-definition.js';

runServiceMain(auditService);
